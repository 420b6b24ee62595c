"""Quality and cost against the rerank depth: the table, its time estimate, its figure."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from rankvideo import formats
from rankvideo.depth import (
    benchmark_seconds,
    by_system,
    depth_report,
    depth_table,
    main,
    rerank_depths,
)
from rankvideo.evaluate import evaluate
from rankvideo.plots import depth_figure

BENCHMARK_HEADER = (
    "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
)


def docs(first, last):
    return [f"d{i:02d}" for i in range(first, last + 1)]


# first-stage documents per retriever and query, best first
FIRST = {
    "r1": {"q1": docs(0, 24), "q2": docs(0, 11), "q3": docs(0, 2), "q6": docs(0, 3)},
    "r2": {"q1": docs(15, 24), "q2": docs(0, 11)[::-1], "q5": docs(0, 9)},
}
# q4 is judged but in no run (it counts as zero); q5 is judged but not an evaluation
# query; q6 is an evaluation query without judgements (scored, not evaluated)
QRELS = {
    "q1": {"d03": 2, "d17": 1, "d21": 1, "d24": 2, "d08": 0},
    "q2": {"d00": 1, "d10": 2},
    "q3": {"d02": 1},
    "q4": {"d00": 1},
    "q5": {"d01": 1},
}
EVAL = ["q1", "q2", "q3", "q4", "q6"]
SCORED_DEPTH = 20


def write_inputs(folder, scored_depth=SCORED_DEPTH):
    """Qrels, eval split, first-stage runs and two systems' reranked pairs of the
    evaluation queries' top `scored_depth`; returns evaluate's arguments."""
    rng = np.random.default_rng(0)
    formats.write_qrels(folder / "qrels.txt", QRELS)
    formats.write_ids(folder / "eval.txt", EVAL)
    first_stage, reranked = {}, {}
    for retriever, run in FIRST.items():
        scores = {q: {d: float(len(ds) - i) for i, d in enumerate(ds)} for q, ds in run.items()}
        first_stage[retriever] = folder / f"{retriever}.json"
        first_stage[retriever].write_text(json.dumps(scores))
        for system in ("A", "B"):
            path = folder / retriever / f"{system}.jsonl"
            path.parent.mkdir(exist_ok=True)
            formats.write_jsonl(
                path,
                [
                    {"query_id": q, "doc_id": d, "logit_delta": float(rng.normal())}
                    for q, ds in run.items()
                    if q in EVAL
                    for d in ds[:scored_depth]
                ],
            )
            reranked[(retriever, system)] = path
    return {
        "qrels": folder / "qrels.txt",
        "first_stage": first_stage,
        "reranked": reranked,
        "eval_queries": folder / "eval.txt",
    }


def write_benchmark(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"{s}\t0:00:0{int(s)}\t100.0\t200.0\t90.0\t95.0\t0.0\t1.0\t50.0\t{s}" for s in seconds]
    path.write_text("\n".join([BENCHMARK_HEADER, *rows]) + "\n")
    return path


def test_depths_stop_at_the_scored_depth():
    assert rerank_depths(20) == [5, 10, 20]
    assert rerank_depths(100) == [5, 10, 20, 50, 100]
    assert rerank_depths(1000) == [5, 10, 20, 50, 100, 1000]
    assert rerank_depths(30) == [5, 10, 20, 30]  # the scored depth is a row of its own
    assert rerank_depths(3) == [3]
    with pytest.raises(ValueError, match="at least 1"):
        rerank_depths(0)


def test_depth_rows_equal_evaluate_at_each_depth(tmp_path):
    inputs = write_inputs(tmp_path)
    table = depth_table(scored_depth=SCORED_DEPTH, **inputs)
    assert sorted(table.depth.unique()) == [5, 10, 20]  # nothing above the scored depth
    metrics = [c for c in table.columns if "@" in c]
    assert metrics == [f"{m}@{k}" for m in ("ndcg", "recall") for k in (5, 10, 20, 50, 100)]
    for depth in (5, 10, 20):
        summary, _ = evaluate(depth=depth, **inputs)
        summary = summary[summary.retriever != "mean"].set_index(["retriever", "system"])
        rows = table[table.depth == depth].set_index(["retriever", "system"])
        assert sorted(rows.index) == sorted(summary.index)
        for key in summary.index:
            assert rows.loc[key, "queries"] == summary.loc[key, "queries"] == 4
            for metric in metrics:
                assert rows.loc[key, metric] == pytest.approx(summary.loc[key, metric], abs=1e-12)
    # the depth matters for this data, and the first stage is the same at every depth
    ndcg = table.set_index(["retriever", "system", "depth"])["ndcg@10"]
    assert ndcg[("r1", "A", 5)] != ndcg[("r1", "A", 20)]
    assert ndcg[("r1", "first_stage", 5)] == ndcg[("r1", "first_stage", 20)]


def test_pairs_and_estimated_seconds(tmp_path):
    inputs = write_inputs(tmp_path)
    benchmarks = {
        "A": [
            write_benchmark(tmp_path / "bench/A/0.tsv", [3.0]),
            write_benchmark(tmp_path / "bench/A/1.tsv", [4.0, 6.0]),  # two repeats: mean 5
        ]
    }
    assert benchmark_seconds(benchmarks["A"]) == 8.0
    table = depth_table(scored_depth=SCORED_DEPTH, benchmarks=benchmarks, **inputs)
    rows = table.set_index(["retriever", "system", "depth"])
    # evaluated queries: r1 has q1 (25 docs), q2 (12), q3 (3); r2 has q1 (10), q2 (12)
    expected_pairs = {
        "r1": {5: 5 + 5 + 3, 10: 10 + 10 + 3, 20: 20 + 12 + 3},
        "r2": {5: 5 + 5, 10: 10 + 10, 20: 10 + 12},
    }
    # pairs the shards scored, the union over retrievers: r1 q1 d00-d19, q2 d00-d11,
    # q3 d00-d02, q6 d00-d03 (unjudged, still scored); r2 adds q1 d20-d24
    per_pair = 8.0 / (20 + 12 + 3 + 4 + 5)
    for retriever, by_depth in expected_pairs.items():
        for depth, pairs in by_depth.items():
            for system in ("A", "B"):
                assert rows.loc[(retriever, system, depth), "pairs"] == pairs
            first = rows.loc[(retriever, "first_stage", depth)]
            assert first.pairs == 0 and first.est_seconds == 0.0
            assert math.isnan(first.seconds_per_pair)
            a = rows.loc[(retriever, "A", depth)]
            assert a.seconds_per_pair == pytest.approx(per_pair)
            assert a.est_seconds == pytest.approx(pairs * per_pair)
            # B has no benchmark files: no estimate
            assert math.isnan(rows.loc[(retriever, "B", depth), "est_seconds"])


def test_benchmark_files_are_checked(tmp_path):
    (tmp_path / "no_s.tsv").write_text("seconds\n1.0\n")
    with pytest.raises(formats.FormatError, match="no_s.tsv: no benchmark rows"):
        benchmark_seconds([tmp_path / "no_s.tsv"])
    (tmp_path / "bad.tsv").write_text(f"{BENCHMARK_HEADER}\n1.0\t0\nNA\t0\n")
    with pytest.raises(formats.FormatError, match=r"bad.tsv:3: s 'NA' is not"):
        benchmark_seconds([tmp_path / "bad.tsv"])


def test_benchmarks_split_by_system():
    paths = [f"b/{s}/{i}.tsv" for s in ("A", "B") for i in range(3)]
    assert by_system(paths, ["A", "B"]) == {"A": paths[:3], "B": paths[3:]}
    with pytest.raises(ValueError, match="do not split evenly"):
        by_system(paths[:5], ["A", "B"])


def test_report_writes_the_table_and_a_png(tmp_path):
    inputs = write_inputs(tmp_path)
    benchmarks = {s: [write_benchmark(tmp_path / f"bench/{s}/0.tsv", [2.0])] for s in "AB"}
    result = depth_report(
        scored_depth=SCORED_DEPTH,
        table=tmp_path / "depth.tsv",
        plot=tmp_path / "depth.png",
        benchmarks=benchmarks,
        **inputs,
    )
    written = pd.read_csv(tmp_path / "depth.tsv", sep="\t")
    assert list(written.columns) == list(result.columns)
    assert len(written) == 2 * 3 * 3  # retrievers x (first stage + 2 systems) x depths
    pd.testing.assert_series_equal(written["ndcg@10"], result["ndcg@10"].round(4))
    # the first stage has no rate: an empty cell
    lines = (tmp_path / "depth.tsv").read_text().splitlines()
    first = next(line.split("\t") for line in lines if "\tfirst_stage\t" in line)
    assert first[written.columns.get_loc("seconds_per_pair")] == ""
    png = (tmp_path / "depth.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert 10_000 < len(png) < 2_000_000


def test_depth_figure_panels(tmp_path):
    inputs = write_inputs(tmp_path)
    timed = depth_table(
        scored_depth=SCORED_DEPTH,
        benchmarks={"A": [write_benchmark(tmp_path / "bench/A/0.tsv", [2.0])]},
        **inputs,
    )
    fig = depth_figure(timed)
    assert len(fig.axes) == 4  # nDCG and time rows, one column per retriever
    assert [ax.get_title() for ax in fig.axes[:2]] == ["r1", "r2"]
    top = fig.axes[0]
    a = next(line for line in top.lines if line.get_label() == "A")
    assert list(a.get_xdata()) == [5, 10, 20]
    expected = timed[(timed.retriever == "r1") & (timed.system == "A")]["ndcg@10"]
    assert list(a.get_ydata()) == pytest.approx(list(expected))
    # mean rows over retrievers are no panel; without benchmark files, no time row
    untimed = depth_table(scored_depth=SCORED_DEPTH, **inputs)
    mean = untimed[untimed.retriever == "r1"].assign(retriever="mean")
    fig = depth_figure(pd.concat([untimed, mean]))
    assert [ax.get_title() for ax in fig.axes] == ["r1", "r2"]


def test_command_line(tmp_path, capsys):
    inputs = write_inputs(tmp_path)
    write_benchmark(tmp_path / "bench/A/0.tsv", [3.0])
    write_benchmark(tmp_path / "bench/A/1.tsv", [5.0])
    argv = ["--qrels", str(inputs["qrels"]), "--queries", str(inputs["eval_queries"])]
    for retriever, path in inputs["first_stage"].items():
        argv += ["--first-stage", f"{retriever}={path}"]
    argv += ["--pred-dir", str(tmp_path), "--bench-dir", str(tmp_path / "bench")]
    argv += ["--depth", "20", "--output", str(tmp_path / "cli.tsv")]
    main(argv)
    assert "first_stage" in capsys.readouterr().out
    written = pd.read_csv(tmp_path / "cli.tsv", sep="\t")
    expected = depth_table(
        scored_depth=SCORED_DEPTH,
        benchmarks={"A": sorted((tmp_path / "bench/A").glob("*.tsv"))},
        **inputs,
    )
    assert list(written.system.unique()) == ["first_stage", "A", "B"]
    assert written["est_seconds"].to_numpy() == pytest.approx(
        expected["est_seconds"].to_numpy(), rel=1e-3, nan_ok=True
    )


def test_library_imports_neither_torch_nor_snakemake():
    code = (
        "import sys, rankvideo.depth, rankvideo.plots\n"
        "assert 'torch' not in sys.modules and 'snakemake' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dry_run_plans_depth_and_per_query_plot(workdir):
    targets = ["results/eval/depth.tsv", "results/plots/per_query_delta.png"]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *targets, "-n", "--quiet", "rules"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    jobs = dict(
        line.split()
        for line in result.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    )
    assert jobs["depth"] == "1" and jobs["plots"] == "1" and jobs["evaluate"] == "1"
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    shards = len(config["rerank"]["systems"]) * config["rerank"]["shards"]
    assert jobs["rerank_shard"] == str(shards)  # the shards whose benchmark files are read
