"""MultiVENT scale: the plan's index files, and a dry run over them that stays small."""

import re
import subprocess
import sys
import time

import pytest

from rankvideo import formats
from rankvideo.scale_plan import write_plan


def test_small_plan_files_are_valid(tmp_path):
    config = write_plan(tmp_path, videos=50, queries=6, train_queries=4, candidates=10, shards=3)
    run = formats.read_run(tmp_path / "ranking_AV_OmniEmbed.json")
    assert len(run) == 10 and all(len(docs) == 10 for docs in run.values())
    scores = list(run["test00000"].values())
    assert scores == sorted(scores, reverse=True)
    assert set(formats.read_queries(tmp_path / "queries.tsv")) == set(run)
    qrels = formats.read_qrels(tmp_path / "qrels.txt")
    assert all(set(docs) <= set(run[q]) for q, docs in qrels.items())
    assert formats.read_ids(tmp_path / "eval.txt") == [f"test{i:05d}" for i in range(6)]
    assert config.read_text().count("shards: 3") == 3


@pytest.mark.workflow
def test_multivent_scale_dry_run(workdir, tmp_path_factory):
    """110k videos, 2.5k queries x 1,000 candidates, 256 shards: 1,294 jobs, none per video."""
    plan = tmp_path_factory.mktemp("multivent")
    config = write_plan(plan)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(config)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    print(f"MultiVENT-scale dry run: {seconds:.1f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, re.MULTILINE))
    shards = {"captions_shard": 256, "teacher_shard": 256, "rerank_shard": 3 * 256}
    assert {rule: int(stats[rule]) for rule in shards} == shards
    assert int(stats["total"]) < 1_400
    # real models ask for GPUs: one per scoring job, one per training process
    blocks = re.split(r"\n(?:local)?rule ", result.stdout)[1:]
    resources = {b.split(":")[0]: re.search(r"resources: (.*)", b).group(1) for b in blocks}
    for rule in shards:
        assert "gpu=1," in resources[rule]
    assert "gpu=4," in resources["train_reranker"]
