"""The SLURM path for real: `snakemake --profile slurm` on a throw-away one-node cluster.

The cluster (munged, slurmctld, slurmd from Debian's slurm packages) starts once for
this module and is stopped after it, on failure too (tests/slurm_cluster.py). The runs
use the repository's profile as it is, with only the partition (and the first status
check, to keep the test short) given on the command line.

The cluster needs Debian's SLURM packages and root. Where they are missing, the tests
that need it skip with the install command; with RANKVIDEO_REQUIRE_SLURM=1 (set by
.ci/run) they run anyway and a missing service fails them.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import slurm_cluster
import yaml
from slurm_cluster import PACKAGES, SYSTEM_CONF, cluster, missing_commands

# seconds for one snakemake run, then `timeout` ends it: a guard against hangs, not a
# speed check (the rerank run measured 95-120 s on a busy 2-core machine; machines of
# the same kind differ up to 2x)
RUN_LIMIT = 900


def skip_reason(required: bool) -> str | None:
    """Why the cluster tests skip here (the install command), or None when they run."""
    if required:  # RANKVIDEO_REQUIRE_SLURM=1: a missing service fails the tests instead
        return None
    if missing := missing_commands():
        problem = f"SLURM is not installed (missing: {', '.join(missing)})"
    elif os.geteuid() != 0:
        problem = "the test cluster runs its daemons as root"
    else:
        return None
    return (
        f"{problem}: install it as root with `apt-get install -y {PACKAGES}`, "
        "or set RANKVIDEO_REQUIRE_SLURM=1 to make this a failure"
    )


REASON = skip_reason(os.environ.get("RANKVIDEO_REQUIRE_SLURM") == "1")
needs_slurm = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    try:
        with cluster(tmp_path_factory.mktemp("slurm")) as running:
            yield running
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


def profile_run(slurm, workdir, *args):
    """`snakemake --profile slurm ARGS` with the test partition, bounded by `timeout -k`."""
    profile = yaml.safe_load((workdir / "slurm/config.yaml").read_text())
    defaults = {**profile["default-resources"], "slurm_partition": slurm.partition}
    command = ["timeout", "-k", "10", str(RUN_LIMIT), sys.executable, "-m", "snakemake"]
    command += ["--profile", "slurm", *args, "--default-resources"]
    command += [f"{key}={value}" for key, value in defaults.items()]
    command += ["--slurm-init-seconds-before-status-checks", "2"]
    result = subprocess.run(
        command, cwd=workdir, env=slurm.env, capture_output=True, text=True, timeout=RUN_LIMIT + 30
    )
    assert result.returncode not in (124, 137), "snakemake timed out:\n" + result.stderr[-3000:]
    return result


def job_ids(result) -> list[str]:
    """The SLURM job ids that snakemake reported for its submissions."""
    return re.findall(r"SLURM jobid (\d+)", result.stdout + result.stderr)


def job_states(slurm, ids) -> dict[str, str]:
    """SLURM's own record of the jobs (kept for MinJobAge = 600 s after they end)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i %T %P"],
        capture_output=True,
        text=True,
        env=slurm.env,
        timeout=30,
        check=True,
    ).stdout
    return {i: f"{state} {partition}" for i, state, partition in map(str.split, out.splitlines())}


def test_missing_packages_are_named(monkeypatch, tmp_path):
    monkeypatch.setattr(slurm_cluster, "COMMANDS", ["sinfo", "no-such-slurm-command"])
    with pytest.raises(RuntimeError, match="no-such-slurm-command.*apt-get install"):
        with cluster(tmp_path):
            pass


def test_missing_slurm_skips_unless_required(monkeypatch):
    monkeypatch.setattr(slurm_cluster, "COMMANDS", ["sinfo", "no-such-slurm-command"])
    reason = skip_reason(required=False)
    assert "no-such-slurm-command" in reason and f"apt-get install -y {PACKAGES}" in reason
    assert skip_reason(required=True) is None


@needs_slurm
def test_every_daemon_stops_when_the_body_fails(tmp_path):
    before = SYSTEM_CONF.read_bytes() if SYSTEM_CONF.exists() else None
    with pytest.raises(RuntimeError, match="the test body failed"):
        with cluster(tmp_path) as running:
            pids = running.pids
            assert len(pids) == 3 and SYSTEM_CONF.read_text().startswith("ClusterName=")
            raise RuntimeError("the test body failed")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert (SYSTEM_CONF.read_bytes() if SYSTEM_CONF.exists() else None) == before


@needs_slurm
def test_rerank_shards_run_as_slurm_jobs(slurm, workdir):
    """Demo data, a tiny model, extraction and two scoring shards via sbatch, their merge
    on the submitting host."""
    small = {
        "demo": {"videos_per_combination": 1, "pretraining_clips": 1},
        "tiny_models": {
            name: {"pretrain": {"steps": 10, "batch_size": 4}}
            for name in ("tiny-qwen3-vl", "tiny-qwen3-vl-instruct")
        },
        "rerank": {"depth": 10, "shards": 2},
    }
    (workdir / "small.yaml").write_text(yaml.safe_dump(small))
    result = profile_run(
        slurm, workdir, "results/rerank/strong/base.run", "--configfile", "small.yaml"
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:] + slurm.log_tail()
    ids = job_ids(result)
    # demo_data, pretraining_world, tiny_models x 2 (the captioner, then the base VLM
    # from it), extract, rerank_shard x 2 are submitted;
    # rerank_merge is a localrule (it only reads and writes files) and runs on the
    # submitting host
    assert len(ids) == len(set(ids)) == 7, log[-5000:]
    assert job_states(slurm, ids) == {i: f"COMPLETED {slurm.partition}" for i in ids}
    slurm_logs = {p.stem for p in (workdir / ".snakemake/slurm_logs").rglob("*.log")}
    assert set(ids) <= slurm_logs
    shard_logs = list((workdir / ".snakemake/slurm_logs/rule_rerank_shard").rglob("*.log"))
    assert len(shard_logs) == 2
    assert not (workdir / ".snakemake/slurm_logs/rule_rerank_merge").exists()
    # the merged output holds every evaluation candidate once, from both shards
    evals = (workdir / "results/data/splits/eval.txt").read_text().split()
    pairs = (workdir / "results/rerank/strong/base.jsonl").read_text().splitlines()
    assert len(pairs) == len(evals) * 10
    # the run file is the final ranking: the reranked top 10, then the first-stage rest
    first = json.loads((workdir / "results/data/first_stage/strong.json").read_text())
    run = (workdir / "results/rerank/strong/base.run").read_text().splitlines()
    assert len(run) == sum(len(first[q]) for q in evals if q in first)
    for shard in (0, 1):
        scores = workdir / f"results/rerank/shards/base/{shard}.jsonl"
        assert scores.read_text().count("\n") > 0


@needs_slurm
def test_a_failing_job_fails_the_run(slurm, workdir):
    """An extraction that finds no video files fails its SLURM job, and with it the run."""
    mine = workdir / "mine"
    (mine / "videos").mkdir(parents=True)
    (mine / "queries.tsv").write_text("q1\ta red circle\n")
    (mine / "qrels.txt").write_text("q1 0 v1 1\n")
    (mine / "ranking_hand.json").write_text('{"q1": {"v1": 1.0}}\n')
    data = {"archive": None, "retrievers": ["hand"], "videos": str(mine / "videos")}
    data |= {"queries": "mine/queries.tsv", "qrels": "mine/qrels.txt", "first_stage_dir": "mine"}
    (workdir / "broken.yaml").write_text(yaml.safe_dump({"data": data}))
    result = profile_run(slurm, workdir, "results/data/queries.tsv", "--configfile", "broken.yaml")
    assert result.returncode != 0
    ids = job_ids(result)  # the first try and the profile's retries
    retries = yaml.safe_load((workdir / "slurm/config.yaml").read_text())["retries"]
    assert len(ids) == len(set(ids)) == 1 + retries
    assert job_states(slurm, ids) == {i: f"FAILED {slurm.partition}" for i in ids}
    assert "no video files" in (workdir / "logs/extract.log").read_text()
    assert not (workdir / "results/data/queries.tsv").exists()
