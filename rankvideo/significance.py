"""Paired significance tests of the evaluated systems, and the paper-style table.

Which pairs are compared. Every system is compared with the first stage
(`first_stage`) of the same retriever. Every trained system, that is every system
other than `first_stage`, `base` (the zero-shot base VLM) and `caption_reasoner`
(the text teacher over captions), is also compared with `base` when `base` was
evaluated: training must beat the model it started from. The trained reranker
(`rankvideo`) is compared with each of its ablations (`rankvideo_no_distill`: the same
training without the teacher's term), which shows what the ablated part brings.

The tests, per retriever and comparison, on the per-query metric (nDCG@10 by
default) of the queries both runs were evaluated on:

- a two-sided paired randomization test: the mean of the per-query differences,
  each difference's sign flipped at random (`scipy.stats.permutation_test`,
  `permutation_type="samples"`: the two values of a query are swapped or not);
  `resamples` random flips, or all 2^n of them when there are fewer;
- the paired t-test beside it (`scipy.stats.ttest_rel`);
- Holm's step-down correction of the randomization-test p-values over the
  retrievers of one comparison (the same system and baseline); a result is
  significant when its Holm p-value is below `alpha`;
- the mean difference with a 95% percentile bootstrap interval (queries resampled
  with their pairs, `scipy.stats.bootstrap(paired=True)`);
- wins, ties and losses over queries (a tie: |difference| < 1e-9).

Each test draws from its own generator, seeded by `seed` and the names of the
retriever, system and baseline: the same inputs give the same bytes, whatever
else is in the table. The library imports neither torch nor snakemake.

The table (`table.md`): retrievers as rows, then their macro average (`mean`, not
tested), systems as columns; each cell the metric with its relative change
against the first stage, `*` when significantly different from the first stage
and `†` from `base`. Its numbers are those of the evaluation summary (ndcg.tsv)
when it is given: the per-query table holds rounded values, whose means can
differ from the summary's in the last digit.

Under the table, notes name each system and retriever whose reranked pairs were cut
to the model's input limit (Qwen3-VL-Reranker's 10,240 tokens): how many pairs, and
how many kept no query token, so that every query of their video got one score. The
counts come from the merged scores (`rankvideo.pairs.cut_counts`); a table without
cut pairs has no notes.

    python -m rankvideo.significance --per-query results/eval/per_query.tsv \\
        --summary results/eval/ndcg.tsv --output-dir results/eval  # significance.tsv, table.md
        [--reranked results/rerank/*/*.jsonl]  # <retriever>/<system>.jsonl: the notes
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rankvideo import formats
from rankvideo.evaluate import FIRST_STAGE, MEAN
from rankvideo.options import positive_int, probability
from rankvideo.pairs import CUT_FIELDS, cut_counts

log = logging.getLogger(__name__)

BASE = "base"
TRAINED = "rankvideo"  # compared with its ablations, rankvideo_<what>
UNTRAINED = (FIRST_STAGE, BASE, "caption_reasoner")  # never compared with base
TIE = 1e-9  # |difference| below this is a tie
CONFIDENCE = 0.95
MARKERS = {FIRST_STAGE: "*", BASE: "†"}
COLUMNS = [
    "retriever",
    "system",
    "baseline",
    "metric",
    "queries",
    "mean_system",
    "mean_baseline",
    "mean_diff",
    "ci_low",
    "ci_high",
    "p_permutation",
    "p_ttest",
    "p_holm",
    "significant",
    "wins",
    "ties",
    "losses",
]
MEAN_FORMAT = "{:.6f}"  # means, differences and interval ends
P_FORMAT = "{:.6g}"  # p-values: six significant digits, exponent notation when tiny


def comparisons(systems) -> list[tuple[str, str]]:
    """(system, baseline) pairs: all against first_stage, trained systems also against base,
    and the trained reranker against each of its ablations (`rankvideo_<what>`)."""
    systems = list(systems)
    pairs = [(s, FIRST_STAGE) for s in systems if s != FIRST_STAGE]
    if BASE in systems:
        pairs += [(s, BASE) for s in systems if s not in UNTRAINED]
    if TRAINED in systems:
        pairs += [(TRAINED, s) for s in systems if s.startswith(f"{TRAINED}_")]
    return pairs


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given.

    The i-th smallest of m p-values is multiplied by m - i + 1 (i from 1), capped at
    1, and made non-decreasing along the sorted order.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def _mean_diff(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def _rngs(seed: int, *names: str) -> list[np.random.Generator]:
    """Two generators (randomization test, bootstrap) from the seed and the names."""
    key = zlib.crc32("\t".join(names).encode("utf-8"))
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, key]).spawn(2)]


# Resamples per vectorised call: scipy draws them from the generator in the same order, so
# the p-values and intervals are those of one call over all of them, while the arrays stay
# at BATCH x queries (10,000 x 2,500 queries in one call: 1.9 GB peak, 3x slower).
BATCH = 500


def paired_test(system, baseline, resamples: int = 10000, seed: int = 0, names=()) -> dict:
    """Tests of one paired comparison: per-query values of the system and the baseline."""
    x = np.asarray(system, dtype=float)
    y = np.asarray(baseline, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(
            f"need two equal-length series of 2 or more queries, got {x.shape}, {y.shape}"
        )
    diff = x - y
    observed = float(diff.mean())
    permutation_rng, bootstrap_rng = _rngs(seed, *names)
    if np.ptp(diff) == 0:
        # Zero variance of the differences: scipy's t-test divides 0 by 0 (NaN) and the
        # bootstrap has nothing to resample. Identical runs (every difference 0) get
        # p = 1 in both tests; one constant shift for every query is an infinite t
        # statistic (p = 0), and its randomization p is the smallest the flips allow.
        p_ttest = 1.0 if observed == 0 else 0.0
        ci_low = ci_high = observed
    else:
        p_ttest = float(stats.ttest_rel(x, y).pvalue)
        interval = stats.bootstrap(
            (x, y),
            _mean_diff,
            n_resamples=resamples,
            paired=True,
            vectorized=True,
            batch=BATCH,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=bootstrap_rng,
        ).confidence_interval
        ci_low, ci_high = float(interval.low), float(interval.high)
    if not diff.any():  # identical runs: every flip gives the observed 0
        p_permutation = 1.0
    else:
        p_permutation = float(
            stats.permutation_test(
                (x, y),
                _mean_diff,
                permutation_type="samples",
                vectorized=True,
                n_resamples=resamples,
                batch=BATCH,
                alternative="two-sided",
                rng=permutation_rng,
            ).pvalue
        )
    return {
        "queries": len(x),
        "mean_system": float(x.mean()),
        "mean_baseline": float(y.mean()),
        "mean_diff": observed,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_permutation": p_permutation,
        "p_ttest": p_ttest,
        "wins": int((diff >= TIE).sum()),
        "ties": int((np.abs(diff) < TIE).sum()),
        "losses": int((diff <= -TIE).sum()),
    }


def _paired(per_query: pd.DataFrame, retriever, system, baseline, metric):
    """Per-query values of the system and the baseline, aligned by query id."""
    values = {}
    for name in (system, baseline):
        rows = per_query[(per_query.retriever == retriever) & (per_query.system == name)]
        if rows.query_id.duplicated().any():
            raise ValueError(f"{retriever}/{name}: a query is evaluated twice")
        values[name] = rows.set_index("query_id")[metric]
    a, b = values[system], values[baseline]
    if set(a.index) != set(b.index):
        odd = sorted(set(a.index) ^ set(b.index))
        raise ValueError(
            f"{retriever}: {system} and {baseline} are evaluated on other queries, e.g. {odd[:5]}"
        )
    return a.sort_index(), b.loc[sorted(a.index)]


def significance(
    per_query: pd.DataFrame,
    metric: str = "ndcg@10",
    alpha: float = 0.05,
    resamples: int = 10000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per retriever x comparison (see the module docstring), with Holm's p."""
    if metric not in per_query.columns:
        known = [c for c in per_query.columns if "@" in c]
        raise ValueError(f"metric {metric!r} is not in the per-query table ({', '.join(known)})")
    retrievers = list(dict.fromkeys(per_query.retriever))
    systems = list(dict.fromkeys(per_query.system))
    if FIRST_STAGE not in systems:
        raise ValueError(f"the per-query table has no {FIRST_STAGE} rows to compare with")
    rows = []
    for retriever in retrievers:
        present = set(per_query.system[per_query.retriever == retriever])
        for system, baseline in comparisons(systems):
            if not {system, baseline} <= present:
                log.warning("%s: %s or %s not evaluated, not compared", retriever, system, baseline)
                continue
            a, b = _paired(per_query, retriever, system, baseline, metric)
            test = paired_test(a, b, resamples, seed, names=(retriever, system, baseline))
            rows.append(
                {"retriever": retriever, "system": system, "baseline": baseline, "metric": metric}
                | test
            )
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("p_holm", "significant")])
    table["p_holm"] = np.nan
    for _, family in table.groupby(["system", "baseline"], sort=False):
        table.loc[family.index, "p_holm"] = holm(family.p_permutation)
    table["significant"] = table.p_holm < alpha
    return table[COLUMNS]


def format_significance(table: pd.DataFrame) -> str:
    """The TSV text of the tests, every float in a fixed format."""
    lines = ["\t".join(COLUMNS)]
    for row in table[COLUMNS].itertuples(index=False):
        cells = []
        for column, value in zip(COLUMNS, row, strict=True):
            if column.startswith("p_"):
                cells.append(P_FORMAT.format(value))
            elif column.startswith(("mean_", "ci_")):
                cells.append(MEAN_FORMAT.format(value))
            else:
                cells.append(str(value))
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def _cells(per_query: pd.DataFrame, metric: str, summary: pd.DataFrame | None):
    """(values, relative changes): rows retrievers (then `mean`), columns systems.

    From the evaluation summary when given (the numbers of ndcg.tsv, whose means are
    taken before rounding, and its mean rows), else from the per-query table.
    """
    retrievers = list(dict.fromkeys(per_query.retriever))
    systems = list(dict.fromkeys(per_query.system))
    rows = retrievers + [MEAN] * (len(retrievers) > 1)
    if summary is None:
        values = per_query.groupby(["retriever", "system"], sort=False)[metric].mean().unstack()
        values = values.reindex(index=retrievers, columns=systems)
        if len(retrievers) > 1:
            values.loc[MEAN] = values[values.columns[values.notna().all()]].mean()
        relative = None
    else:
        if metric not in summary.columns:
            raise ValueError(f"metric {metric!r} is not in the evaluation summary")
        indexed = summary.set_index(["retriever", "system"])
        pairs = per_query[["retriever", "system"]].drop_duplicates().itertuples(index=False)
        lacking = [f"{r}/{s}" for r, s in pairs if (r, s) not in indexed.index]
        if lacking:
            raise ValueError(
                f"the evaluation summary lacks rows of the per-query table: {', '.join(lacking)}"
            )
        values = indexed[metric].unstack().reindex(index=rows, columns=systems)
        column = f"rel_change_{metric}"
        relative = None
        if column in indexed.columns:
            relative = indexed[column].unstack().reindex(index=rows, columns=systems)
    if relative is None:
        first = values[FIRST_STAGE]
        relative = values.div(first.where(first != 0), axis=0) - 1.0
    return values.reindex(rows), relative.reindex(rows)


def _cell(value: float, relative: float, markers: str, first_stage: bool) -> str:
    if math.isnan(value):
        return ""
    cell = f"{value:.4f}"
    if not first_stage and not math.isnan(relative):
        cell += f" ({round(100 * relative, 1) + 0.0:+.1f}%)"  # + 0.0: no "-0.0%"
    return cell + markers


def paper_table(
    per_query: pd.DataFrame,
    tests: pd.DataFrame,
    metric: str = "ndcg@10",
    alpha: float = 0.05,
    resamples: int = 10000,
    seed: int = 0,
    summary: pd.DataFrame | None = None,
    notes=(),
) -> str:
    """Markdown: retrievers (and their mean) x systems, the metric, change and markers.

    The cells come from `summary` (ndcg.tsv) when it is given, else from the
    per-query table; the markers from `tests`. `notes` (`cut_notes`) follow the
    footnote under a heading, when there are any.
    """
    retrievers = list(dict.fromkeys(per_query.retriever))
    systems = list(dict.fromkeys(per_query.system))
    values, relative = _cells(per_query, metric, summary)
    significant = {(t.retriever, t.system, t.baseline) for t in tests.itertuples() if t.significant}
    name = metric.replace("ndcg", "nDCG").replace("recall", "Recall")
    lines = ["| retriever | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
    for retriever in values.index:
        cells = [
            _cell(
                values.loc[retriever, system],
                relative.loc[retriever, system],
                "".join(
                    marker
                    for baseline, marker in MARKERS.items()
                    if (retriever, system, baseline) in significant
                ),
                system == FIRST_STAGE,
            )
            for system in systems
        ]
        lines.append(f"| {retriever} | " + " | ".join(cells) + " |")
    queries = sorted(set(tests.queries)) or sorted(
        set(per_query.groupby(["retriever", "system"]).size())
    )
    count = " or ".join(map(str, queries))
    correction = (
        f"Holm-corrected over the {len(retrievers)} retrievers of each comparison"
        if len(retrievers) > 1
        else "one retriever, so no correction"
    )
    footnote = (
        f"{name} on {count} evaluation queries per retriever; in parentheses, the relative "
        f"change against {FIRST_STAGE}. {MARKERS[FIRST_STAGE]}: significantly different from "
        f"{FIRST_STAGE}; {MARKERS[BASE]}: from {BASE} (trained systems only). Two-sided paired "
        f"randomization test on per-query {name} ({resamples} sign-flip resamples, seed "
        f"{seed}), {correction}, alpha = {alpha:g}."
    )
    if len(retrievers) > 1:
        footnote += " The mean row is the macro average over retrievers and is not tested."
    table = "\n".join(lines) + "\n\n" + footnote + "\n"
    if notes:
        table += "\nNotes:\n\n" + "".join(f"- {note}\n" for note in notes)
    return table


def reranked_paths(paths) -> dict[tuple[str, str], Path]:
    """{(retriever, system): path} of merged scores named `<retriever>/<system>.jsonl`."""
    return {(Path(p).parent.name, Path(p).name.removesuffix(".jsonl")): Path(p) for p in paths}


def cut_notes(reranked: dict, order=()) -> list[str]:
    """One note per (retriever, system) of `reranked` ({(retriever, system): merged
    scores}) whose pairs were cut, in the order of `order`'s (retriever, system) keys."""
    keys = sorted(reranked, key=lambda k: (list(order).index(k) if k in order else len(order), k))
    notes = []
    for retriever, system in keys:
        path = reranked[retriever, system]
        records = formats.read_jsonl(path, ("query_id", "doc_id"))
        first = next(records, None)
        # the merge gives every record the optional fields of the first one: a file without
        # the cut fields has no cut pair, and is not read further
        if first is None or not any(f in first[1] for f in CUT_FIELDS):
            continue
        counts = cut_counts(r for _, r in itertools.chain([first], records))
        if not counts["cut"]:
            continue
        videos = len(counts["videos_query_lost"])
        notes.append(
            f"{system} on {retriever}: {counts['cut']} of {counts['pairs']} reranked pairs "
            "were longer than the model's input limit and cut as its authors cut them; "
            f"{counts['query_lost']} of them ({videos} videos) kept no query token, so "
            "every query of such a video got one score."
        )
    return notes


def read_per_query(path) -> pd.DataFrame:
    """The per-query table of `rankvideo.evaluate` (ids kept as text)."""
    return pd.read_csv(
        path,
        sep="\t",
        dtype={"retriever": str, "system": str, "query_id": str},
        keep_default_na=False,
    )


def read_summary(path) -> pd.DataFrame:
    """The summary table of `rankvideo.evaluate` (ndcg.tsv; an empty cell is NaN)."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in table.columns:
        if "@" in column:
            table[column] = pd.to_numeric(table[column].replace("", "nan"))
    return table


def run(
    per_query,
    significance_tsv,
    table_md,
    metric: str = "ndcg@10",
    alpha: float = 0.05,
    resamples: int = 10000,
    seed: int = 0,
    summary=None,
    reranked=None,
) -> pd.DataFrame:
    """Read the per-query table, write the tests (TSV) and the paper table (Markdown).

    `summary` (ndcg.tsv, optional) gives the table's cells the evaluation's numbers;
    `reranked` (merged scores: {(retriever, system): path}, or paths named
    `<retriever>/<system>.jsonl`, optional) the notes on cut pairs.
    """
    table = read_per_query(per_query)
    tests = significance(table, metric, alpha, resamples, seed)
    Path(significance_tsv).write_text(format_significance(tests), encoding="utf-8")
    means = None if summary is None else read_summary(summary)
    if reranked is not None and not isinstance(reranked, dict):
        reranked = reranked_paths(reranked)
    order = [(r, s) for s in dict.fromkeys(table.system) for r in dict.fromkeys(table.retriever)]
    notes = cut_notes(reranked, order) if reranked else []
    Path(table_md).write_text(
        paper_table(table, tests, metric, alpha, resamples, seed, means, notes), encoding="utf-8"
    )
    log.info("\n%s", tests.to_string(index=False))
    return tests


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Paired significance tests and the paper table from a per-query table."
    )
    parser.add_argument("--per-query", required=True, help="per_query.tsv of rankvideo.evaluate")
    parser.add_argument("--output-dir", required=True, help="writes significance.tsv, table.md")
    parser.add_argument(
        "--summary", help="ndcg.tsv of the same evaluation: the table's cells (default: means)"
    )
    parser.add_argument(
        "--reranked",
        nargs="+",
        help="merged scores named <retriever>/<system>.jsonl: notes on pairs cut to the "
        "model's input limit",
    )
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument("--alpha", type=probability, default=0.05)
    parser.add_argument("--resamples", type=positive_int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    run(
        args.per_query,
        out / "significance.tsv",
        out / "table.md",
        args.metric,
        args.alpha,
        args.resamples,
        args.seed,
        args.summary,
        args.reranked,
    )
    print((out / "table.md").read_text(encoding="utf-8"), end="")


if __name__ == "__main__":
    main()
