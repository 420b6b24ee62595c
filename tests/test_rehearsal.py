"""The MultiVENT 2.0 rehearsal (devtools/rehearsal.py) at a small fraction of full size:
its inputs in MultiVENT's formats, every job but the model's run for real, the report."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rehearsal")
    done = subprocess.run(
        [sys.executable, str(ROOT / "devtools/rehearsal.py"), "--fraction", "0.002",
         "--dir", str(folder), "--cores", "2"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done.stdout


def test_the_rehearsal_runs_every_job_to_the_report(rehearsal):
    folder, printed = rehearsal
    counts = json.loads((folder / "counts.json").read_text())
    assert counts["videos"] == 220 and counts["eval_queries"] == 5
    videos = list((folder / "videos").rglob("*.mp4"))
    assert len(videos) == 220 and all(v.is_symlink() for v in videos)
    table = pd.read_csv(folder / "results/eval/ndcg.tsv", sep="\t")
    retrievers = ["AV_OmniEmbed", "OmniEmbed_text", "MMMORRF", "SigLIP", "CLIP", "mean"]
    systems = ["first_stage", "release", "published", "ours"]
    assert [tuple(r) for r in table[["retriever", "system"]].values] == [
        (r, s) for r in retrievers for s in systems
    ]
    assert (table.queries == 5).all() and (table.missing_from_run == 0).all()
    # the score files follow the judgements: every system beats the first stage on average
    mean = table[table.retriever == "mean"].set_index("system")["ndcg@10"]
    assert (mean[systems[1:]] > mean["first_stage"]).all(), mean
    tests = pd.read_csv(folder / "results/eval/significance.tsv", sep="\t")
    assert set(tests.system) == set(systems[1:]) and set(tests.baseline) == {"first_stage"}
    depth = pd.read_csv(folder / "results/eval/depth.tsv", sep="\t")
    assert depth.est_seconds[depth.system != "first_stage"].isna().all()  # no job scored them
    audit = pd.read_csv(folder / "results/teacher/audit.tsv", sep="\t").set_index("measure")
    assert audit.loc["roc_auc", "value"] > 0.6
    assert (folder / "report.zip").stat().st_size > 10_000
    provenance = (folder / "results/provenance/provenance.tsv").read_text()
    assert "scores_ours" in provenance and "scores_release_CLIP" in provenance
    assert "models." not in provenance  # no model was used, none was built
    assert not (folder / "resources/models").exists()


def test_every_job_has_its_time_and_memory(rehearsal):
    folder, printed = rehearsal
    jobs = pd.read_csv(folder / "jobs.tsv", sep="\t").set_index("job")
    rerank = [j for j in jobs.index if j.startswith("rerank/")]
    assert len(rerank) == 15
    for job in [
        "extract",
        "eval/ndcg",
        "eval/significance",
        "eval/depth",
        "plots/plots",
        "teacher/audit",
        "provenance/provenance",
        "(snakemake -n)",
        "(--report)",
    ]:
        assert job in jobs.index and jobs.loc[job, "seconds"] > 0
    assert (jobs.max_rss_mb.dropna() > 0).all()
    assert "eval/depth" in printed
