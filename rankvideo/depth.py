"""Rerank depth against quality and cost, from one scoring run.

A cascade scored at depth D holds a score for each of the first stage's top D
candidates of every query, so the cascade at any depth d <= D is the same scores
applied to the top d (`rankvideo.evaluate.cascade`): the quality at every smaller
depth costs no new scoring. Each row of the table is what `rankvideo.evaluate.evaluate`
reports at that depth (tested), beside its cost:

- `pairs`: the pairs a system scores at depth d, the sum over the evaluated queries
  (judged queries the first stage has results for) of min(d, the query's first-stage
  documents); 0 for the first stage.
- `seconds_per_pair`: the measured wall time of the system's scoring jobs (Snakemake
  benchmark files, column `s`, summed over the jobs) over the pairs those jobs scored,
  the union of every retriever's pairs of the system.
- `est_seconds`: pairs x seconds_per_pair, an estimate. The measured time includes
  loading the model, and shared-prefix scoring encodes a video once for all of its
  queries, so the real cost is not quite linear in the pairs; a job that resumed after
  a kill was timed only for its last part.

The depths are 5, 10, 20, 50 and 100 up to the scored depth, and the scored depth
itself, whose rows equal the evaluation table's.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import pandas as pd

from rankvideo import formats
from rankvideo.evaluate import (
    CUTOFFS,
    FIRST_STAGE,
    cascades,
    evaluate_run,
    first_stage_orders,
    judged_queries,
    read_scores,
)
from rankvideo.options import positive_int

log = logging.getLogger(__name__)

DEPTHS = (5, 10, 20, 50, 100)


def rerank_depths(scored_depth: int, depths=DEPTHS) -> list[int]:
    """The depths up to `scored_depth`, and `scored_depth` itself."""
    if scored_depth < 1:
        raise ValueError(f"the scored depth must be at least 1, not {scored_depth}")
    return sorted({d for d in depths if d <= scored_depth} | {scored_depth})


def benchmark_seconds(paths) -> float:
    """Wall seconds of jobs from their Snakemake benchmark files (column `s`).

    A file holds one row per repeat of its job: the job's time is their mean.
    """
    total = 0.0
    for path in paths:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        if "s" not in table.columns or table.empty:
            raise formats.FormatError(path, None, "no benchmark rows with a column 's'")
        seconds = pd.to_numeric(table["s"], errors="coerce")
        bad = seconds.isna() | (seconds < 0)
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise formats.FormatError(
                path, row + 2, f"s {table['s'].iloc[row]!r} is not a non-negative number"
            )
        total += float(seconds.mean())
    return total


def seconds_per_pair(
    scores: dict[tuple[str, str], dict[str, dict[str, float]]], benchmarks: dict[str, list]
) -> dict[str, float]:
    """Measured seconds per scored pair of each system that has benchmark files.

    The scoring jobs of a system score the union of its pairs over the retrievers.
    """
    rates = {}
    for system, paths in benchmarks.items():
        pairs = {
            (q, d)
            for (_, s), run in scores.items()
            if s == system
            for q, docs in run.items()
            for d in docs
        }
        if not paths or not pairs:
            log.warning("%s: no benchmark files or no scored pairs, no time estimate", system)
            continue
        seconds = benchmark_seconds(paths)
        rates[system] = seconds / len(pairs)
        log.info(
            "%s: %.1f s over %d jobs for %d pairs: %.4g s per pair",
            system, seconds, len(paths), len(pairs), rates[system],
        )  # fmt: skip
    return rates


def depth_table(
    qrels,
    first_stage: dict[str, str],
    reranked: dict[tuple[str, str], str],
    scored_depth: int,
    benchmarks: dict[str, list] | None = None,
    depths=DEPTHS,
    score_field: str = "logit_delta",
    eval_queries=None,
    cutoffs=CUTOFFS,
) -> pd.DataFrame:
    """One row per retriever x system x depth: quality, pairs scored, estimated time.

    `first_stage` maps retriever -> run file; `reranked` maps (retriever, system) ->
    the reranked JSON lines (scored to `scored_depth`); `benchmarks` maps system ->
    the benchmark files of its scoring jobs. Every file is read once.
    """
    judged = judged_queries(qrels, eval_queries)
    scores = {key: read_scores(path, score_field) for key, path in reranked.items()}
    rates = seconds_per_pair(scores, benchmarks or {})
    depths = rerank_depths(scored_depth, depths)
    rows = []
    for retriever, run_path in first_stage.items():
        first = formats.read_run(run_path)
        orders = first_stage_orders(first, judged)
        systems = [FIRST_STAGE] + [s for r, s in scores if r == retriever]
        for system in systems:
            for depth in depths:
                if system == FIRST_STAGE:
                    run, pairs, rate = None, 0, None
                else:
                    run = scores[(retriever, system)]
                    pairs = sum(min(depth, len(order)) for order in orders.values())
                    rate = rates.get(system, math.nan)
                if system != FIRST_STAGE or depth == depths[0]:  # the first stage has no depth
                    rankings = cascades(first, orders, run, depth, f"{retriever}/{system}")
                    metrics = evaluate_run(judged, rankings, cutoffs).drop(
                        columns=["query_id", "in_run"]
                    )
                rows.append(
                    {
                        "retriever": retriever,
                        "system": system,
                        "depth": depth,
                        "queries": len(judged),
                        "pairs": pairs,
                        "seconds_per_pair": math.nan if rate is None else rate,
                        "est_seconds": 0.0 if rate is None else pairs * rate,
                    }
                    | metrics.mean().to_dict()
                )
    return pd.DataFrame(rows)


def write_depth_table(table: pd.DataFrame, output) -> None:
    """The table as TSV: metrics to 4 decimals, times to 4 significant digits."""
    out = table.copy()
    metrics = [c for c in out.columns if "@" in c]
    out[metrics] = out[metrics].round(4)
    out["seconds_per_pair"] = out["seconds_per_pair"].map(lambda v: float(f"{v:.4g}"))
    out["est_seconds"] = out["est_seconds"].map(lambda v: float(f"{v:.4g}"))
    out.to_csv(output, sep="\t", index=False)
    log.info("wrote %s\n%s", output, out.to_string(index=False))


def depth_report(
    qrels,
    first_stage: dict[str, str],
    reranked: dict[tuple[str, str], str],
    scored_depth: int,
    table,
    plot=None,
    benchmarks: dict[str, list] | None = None,
    score_field: str = "logit_delta",
    eval_queries=None,
) -> pd.DataFrame:
    """Write the depth table (TSV) and, where `plot` is given, its figure (PNG)."""
    result = depth_table(
        qrels,
        first_stage,
        reranked,
        scored_depth,
        benchmarks,
        score_field=score_field,
        eval_queries=eval_queries,
    )
    write_depth_table(result, table)
    if plot is not None:
        from rankvideo.plots import plot_depth

        plot_depth(result, plot)
    return result


def by_system(paths: list, systems: list[str]) -> dict[str, list]:
    """Split a system-major list of benchmark files (as `expand` writes it) by system.

    No systems (every system a file of scores, which no job scores): no files."""
    if not systems and not paths:
        return {}
    if not systems or len(paths) % len(systems):
        raise ValueError(f"{len(paths)} benchmark files do not split evenly over {systems}")
    n = len(paths) // len(systems)
    return {s: list(paths[i * n : (i + 1) * n]) for i, s in enumerate(systems)}


def _named(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected RETRIEVER=RUN_FILE, got {text!r}")
    return name, path


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="nDCG and scoring cost at every rerank depth up to the scored one."
    )
    parser.add_argument("--qrels", required=True)
    parser.add_argument(
        "--first-stage",
        required=True,
        action="append",
        type=_named,
        metavar="RETRIEVER=RUN",
        help="a first-stage run (repeat for every retriever that was scored)",
    )
    parser.add_argument(
        "--pred-dir",
        required=True,
        help="folder of reranked pairs as <retriever>/<system>.jsonl (results/rerank)",
    )
    parser.add_argument(
        "--bench-dir",
        help="benchmark files of the scoring jobs as <system>/<job>.tsv "
        "(benchmarks/rerank/shards); without it est_seconds is empty",
    )
    parser.add_argument("--depth", type=positive_int, default=20, help="the depth that was scored")
    parser.add_argument("--score-field", default="logit_delta", choices=["logit_delta", "p_yes"])
    parser.add_argument("--queries", help="file of query ids to evaluate (default: all judged)")
    parser.add_argument("--output", default="depth.tsv", help="table (TSV)")
    parser.add_argument("--plot", help="figure (PNG)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    first_stage = dict(args.first_stage)
    reranked = {
        (retriever, path.stem): path
        for retriever in first_stage
        for path in sorted((Path(args.pred_dir) / retriever).glob("*.jsonl"))
    }
    if not reranked:
        parser.error(f"no <retriever>/<system>.jsonl files in {args.pred_dir}")
    benchmarks = None
    if args.bench_dir:
        systems = dict.fromkeys(s for _, s in reranked)
        benchmarks = {s: sorted((Path(args.bench_dir) / s).glob("*.tsv")) for s in systems}
    result = depth_report(
        args.qrels,
        first_stage,
        reranked,
        args.depth,
        args.output,
        args.plot,
        benchmarks,
        args.score_field,
        args.queries,
    )
    print(result.to_string(index=False, float_format="%.4f"))


if __name__ == "__main__":
    main()
