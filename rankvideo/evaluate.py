"""nDCG and recall of first-stage and reranked runs, through pytrec_eval.

The order rule. The first stage is ordered as trec_eval orders a run file: score
descending (compared in single precision, as trec_eval keeps scores), ties by doc
id descending. So the first_stage row equals what trec_eval or pytrec_eval report
on the same run, and the top `depth` that extraction hands to the rerankers
(`formats.invert_run`) is trec_eval's top `depth`.

Cascade reranking: a system reorders the first stage's top `depth` documents of
each query by its score, ties falling back to the first-stage order (the rank in
the first stage); documents below `depth` keep their first-stage order after
them. The final order is handed to pytrec_eval as rank-based scores, so its own
tie handling never changes it. Judged queries that a run lacks count as zero
(trec_eval -c), and how many there were is written down. A retriever whose first
stage scores nDCG@10 0 has no relative change: that cell is left empty.

The mean rows. With two or more retrievers, the summary ends with one row per
system whose retriever is `mean`: the macro average over retrievers of every
nDCG@k and Recall@k column (each retriever weighs the same). Every retriever is
evaluated on the same judged queries, so its `queries` is that number;
`missing_from_run` is the sum over retrievers (each missing query counted as zero
in its retriever's average). Its relative change is computed from the mean rows
(mean system nDCG@10 over mean first-stage nDCG@10). A system that lacks a
retriever gets no mean row; a retriever may not be named `mean` then.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import pandas as pd
import pytrec_eval

from rankvideo import formats
from rankvideo.options import positive_int

log = logging.getLogger(__name__)

CUTOFFS = (5, 10, 20, 50, 100)
FIRST_STAGE = "first_stage"
MEAN = "mean"  # the retriever of the mean rows


def read_scores(path, field: str) -> dict[str, dict[str, float]]:
    """{query: {doc: score}} from reranked JSON lines (`field`) or a run file."""
    if not Path(path).name.removesuffix(".gz").endswith(".jsonl"):
        return formats.read_run(path)
    run: dict[str, dict[str, float]] = {}
    for number, r in formats.read_jsonl(path, ("query_id", "doc_id", field)):
        for key in ("query_id", "doc_id"):
            if not isinstance(r[key], str):
                raise formats.FormatError(path, number, f"{key} {r[key]!r} is not a string")
        score = r[field]
        if not formats.is_number(score):
            raise formats.FormatError(path, number, f"{field} {score!r} is not a number")
        if not math.isfinite(score):
            raise formats.FormatError(path, number, f"{field} {score!r} is not a finite number")
        docs = run.setdefault(r["query_id"], {})
        if r["doc_id"] in docs:
            raise formats.FormatError(
                path, number, f"duplicate score for ({r['query_id']}, {r['doc_id']})"
            )
        docs[r["doc_id"]] = float(score)
    return run


def cascade(
    first_stage: dict[str, float],
    scores: dict[str, float] | None,
    depth: int,
    where: str,
    order: list[str] | None = None,
) -> list[str]:
    """Final ranking of one query: the reranked top `depth`, then the first-stage rest.

    `order` is the first stage's own order, when the caller ranked it already (one query's
    first stage serves every system and depth)."""
    order = formats.ranked(first_stage) if order is None else order
    if scores is None:
        return order
    top = order[:depth]
    missing = [d for d in top if d not in scores]
    if missing:
        raise ValueError(
            f"{where}: no score for {len(missing)} top-{depth} candidates, e.g. {missing[:5]}"
        )
    rank = {d: i for i, d in enumerate(top)}
    return formats.ranked({d: scores[d] for d in top}, rank) + order[depth:]


def first_stage_orders(first: dict[str, dict[str, float]], queries) -> dict[str, list[str]]:
    """trec_eval's order of each query's first stage (the queries of `queries` it has)."""
    return {q: formats.ranked(first[q]) for q in queries if q in first}


def cascades(first: dict, orders: dict, scores: dict | None, depth: int, where: str) -> dict:
    """The final ranking of every query of `orders` (first-stage orders by query), with a
    system's `scores` ({query: {doc: score}}; None: the first stage alone)."""
    return {
        q: cascade(
            first[q], None if scores is None else scores.get(q, {}), depth, f"{where}/{q}", order
        )
        for q, order in orders.items()
    }


def evaluate_run(qrels, rankings: dict[str, list[str]], cutoffs=CUTOFFS) -> pd.DataFrame:
    """Per-query nDCG@k and recall@k; judged queries without a ranking score zero.

    Only each ranking's top max(cutoffs) reach pytrec_eval: nDCG@k and recall@k read no
    document below rank k (the ideal DCG and the recall base come from the qrels)."""
    measures = {f"ndcg_cut.{','.join(map(str, cutoffs))}", f"recall.{','.join(map(str, cutoffs))}"}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures)
    cut = max(cutoffs)
    run = {
        q: {d: float(cut - i) for i, d in enumerate(docs[:cut])}
        for q, docs in rankings.items()
        if docs
    }
    results = evaluator.evaluate(run)
    columns = [f"{m}@{k}" for m in ("ndcg", "recall") for k in cutoffs]
    rows = []
    for qid in sorted(qrels):
        values = results.get(qid)
        row = {"query_id": qid, "in_run": values is not None}
        for m, name in (("ndcg", "ndcg_cut"), ("recall", "recall")):
            for k in cutoffs:
                row[f"{m}@{k}"] = values[f"{name}_{k}"] if values else 0.0
        rows.append(row)
    return pd.DataFrame(rows, columns=["query_id", "in_run", *columns])


def judged_queries(qrels, eval_queries=None) -> dict[str, dict[str, int]]:
    """The qrels of the evaluated queries: those of `eval_queries` (a file of ids or a
    list) that have judgements; the others are named and counted in the log."""
    judged = formats.read_qrels(qrels)
    if eval_queries is not None:
        from_file = isinstance(eval_queries, (str, Path))
        ids = formats.read_ids(eval_queries) if from_file else eval_queries
        unjudged = [q for q in ids if q not in judged]
        if unjudged:
            log.warning(
                "%s: %d of %d evaluation queries have no judgements in %s and are not "
                "evaluated: %s",
                eval_queries if from_file else "evaluation queries",
                len(unjudged), len(ids), qrels, _listed(unjudged),
            )  # fmt: skip
        judged = {q: judged[q] for q in ids if q in judged}
    if not judged:
        raise ValueError(f"{qrels}: no judged queries to evaluate")
    return judged


def _listed(ids: list, shown: int = 20) -> str:
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def evaluate(
    qrels,
    first_stage: dict[str, str],
    reranked: dict[tuple[str, str], str],
    depth: int,
    score_field: str = "logit_delta",
    eval_queries=None,
    cutoffs=CUTOFFS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, per-query) tables for every retriever x system.

    `first_stage` maps retriever -> run file; `reranked` maps (retriever, system)
    -> reranked JSON lines or run file.
    """
    judged = judged_queries(qrels, eval_queries)
    per_query = []
    for retriever, run_path in first_stage.items():
        first = formats.read_run(run_path)
        orders = first_stage_orders(first, judged)
        systems = {FIRST_STAGE: None} | {
            s: read_scores(p, score_field) for (r, s), p in reranked.items() if r == retriever
        }
        for system, scores in systems.items():
            rankings = cascades(first, orders, scores, depth, f"{retriever}/{system}")
            table = evaluate_run(judged, rankings, cutoffs)
            table.insert(0, "system", system)
            table.insert(0, "retriever", retriever)
            per_query.append(table)
    per_query = pd.concat(per_query, ignore_index=True)
    metrics = [c for c in per_query.columns if "@" in c]
    summary = per_query.groupby(["retriever", "system"], sort=False)[metrics].mean().reset_index()
    counts = (
        per_query.groupby(["retriever", "system"], sort=False)["in_run"]
        .agg(["size", "sum"])
        .reset_index()
    )
    summary.insert(2, "queries", counts["size"].to_numpy())
    summary.insert(3, "missing_from_run", (counts["size"] - counts["sum"]).to_numpy())
    summary = with_mean_rows(summary)
    summary["rel_change_ndcg@10"] = relative_change(summary)
    for row in summary.itertuples():
        if row.missing_from_run and row.retriever != MEAN:
            log.warning("%s/%s: %d judged queries missing from the run, counted as 0",
                        row.retriever, row.system, row.missing_from_run)  # fmt: skip
    return summary, per_query


def with_mean_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary, then per system its macro average over retrievers (retriever `mean`).

    Nothing is added for a single retriever (the row would repeat it).
    """
    retrievers = list(dict.fromkeys(summary.retriever))
    if len(retrievers) < 2:
        return summary
    if MEAN in retrievers:
        raise ValueError(f"a retriever is named {MEAN!r}, the name of the mean rows: rename it")
    present = summary.groupby("system", sort=False)["retriever"].nunique()
    partial = present.index[present < len(retrievers)]
    if len(partial):
        log.warning("no mean row for %s: not evaluated on every retriever", ", ".join(partial))
    rows = summary[summary.system.isin(present.index[present == len(retrievers)])]
    metrics = [c for c in summary.columns if "@" in c]
    mean = rows.groupby("system", sort=False).agg(
        {"queries": "max", "missing_from_run": "sum"} | dict.fromkeys(metrics, "mean")
    )
    mean = mean.reset_index()
    mean.insert(0, "retriever", MEAN)
    return pd.concat([summary, mean[summary.columns]], ignore_index=True)


def relative_change(summary: pd.DataFrame) -> pd.Series:
    """nDCG@10 relative to the retriever's first stage; NaN (an empty cell) where that is 0."""
    base = summary[summary.system == FIRST_STAGE].set_index("retriever")["ndcg@10"]
    for retriever in base.index[base == 0]:
        log.warning(
            "%s: the first stage scores nDCG@10 0, so rel_change_ndcg@10 is left empty", retriever
        )
    return summary["ndcg@10"] / summary["retriever"].map(base.where(base != 0)) - 1.0


def write_tables(summary: pd.DataFrame, per_query: pd.DataFrame, table, per_query_table) -> None:
    summary.to_csv(table, sep="\t", index=False, float_format="%.4f")
    per_query.to_csv(per_query_table, sep="\t", index=False, float_format="%.4f")
    log.info("\n%s", summary.to_string(index=False, float_format="%.4f"))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate reranked runs against the first stage.")
    parser.add_argument("--pred-dir", required=True, help="folder of reranked <system>.jsonl files")
    parser.add_argument(
        "--first-stage", required=True, help="first-stage run {qid: {docid: score}}"
    )
    parser.add_argument("--qrels", required=True)
    parser.add_argument(
        "--depth", type=positive_int, default=20, help="cascade depth (reranked top-k)"
    )
    parser.add_argument("--score-field", default="logit_delta", choices=["logit_delta", "p_yes"])
    parser.add_argument("--queries", help="file of query ids to evaluate (default: all judged)")
    parser.add_argument("--output", default=None, help="summary TSV (default: <pred-dir>/ndcg.tsv)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    retriever = Path(args.first_stage).name.split(".")[0]
    predictions = sorted(Path(args.pred_dir).glob("*.jsonl"))
    if not predictions:
        parser.error(f"no <system>.jsonl files in {args.pred_dir}")
    summary, per_query = evaluate(
        args.qrels,
        {retriever: args.first_stage},
        {(retriever, p.stem): p for p in predictions},
        args.depth,
        args.score_field,
        args.queries,
    )
    output = Path(args.output or Path(args.pred_dir) / "ndcg.tsv")
    write_tables(summary, per_query, output, output.with_name(output.stem + "_per_query.tsv"))
    print(summary.to_string(index=False, float_format="%.4f"))


if __name__ == "__main__":
    main()
