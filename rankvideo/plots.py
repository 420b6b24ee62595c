"""Figures of the evaluation: nDCG@10 per retriever x system, per-query changes against
the first stage, quality and cost against the rerank depth, score ECDFs."""

from __future__ import annotations

import json
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from rankvideo import formats  # noqa: E402
from rankvideo.evaluate import FIRST_STAGE, MEAN  # noqa: E402

log = logging.getLogger(__name__)


def _save(fig, output) -> None:
    fig.tight_layout()
    fig.savefig(output, dpi=150)
    plt.close(fig)
    log.info("wrote %s", output)


def _table(table) -> pd.DataFrame:
    """A TSV table (path) or a DataFrame, with ids read as text."""
    if isinstance(table, pd.DataFrame):
        return table
    return pd.read_csv(table, sep="\t", dtype={"retriever": str, "system": str, "query_id": str})


def _retrievers(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of real retrievers: rows averaged over retrievers (`mean`) are left out."""
    means = table.retriever == MEAN
    if means.any():
        log.info("left out %d rows of retriever %r (averages over retrievers)", means.sum(), MEAN)
    return table[~means]


def ndcg_figure(table, metric: str = "ndcg@10"):
    """Grouped bars: one group per retriever, one bar per system (`mean` rows left out)."""
    summary = _retrievers(_table(table))
    retrievers = list(dict.fromkeys(summary.retriever))
    systems = list(dict.fromkeys(summary.system))  # table order: first_stage first
    wide = summary.pivot(index="retriever", columns="system", values=metric)
    wide = wide.loc[retrievers, systems]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(wide) * max(1, len(systems)) / 2, 3.6))
    width = 0.8 / len(systems)
    x = np.arange(len(wide))
    for i, system in enumerate(systems):
        bars = ax.bar(x + i * width - 0.4 + width / 2, wide[system], width, label=system)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, wide.index)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{metric} on the evaluation queries")
    ax.legend(frameon=False, fontsize=8)
    return fig


def plot_ndcg(table, output, metric: str = "ndcg@10") -> None:
    _save(ndcg_figure(table, metric), output)


def per_query_deltas(per_query, metric: str = "ndcg@10") -> dict[str, dict[str, pd.Series]]:
    """{retriever: {system: per-query change of `metric` against the first stage}},
    each sorted from the largest gain to the largest loss."""
    table = _retrievers(_table(per_query))
    deltas: dict[str, dict[str, pd.Series]] = {}
    for retriever, rows in table.groupby("retriever", sort=False):
        base = rows[rows.system == FIRST_STAGE].set_index("query_id")[metric]
        if base.empty:
            raise ValueError(f"{retriever}: the per-query table has no {FIRST_STAGE} rows")
        deltas[retriever] = {}
        for system, own in rows[rows.system != FIRST_STAGE].groupby("system", sort=False):
            values = own.set_index("query_id")[metric]
            differ = values.index.symmetric_difference(base.index)
            if len(differ):
                raise ValueError(
                    f"{retriever}/{system}: {len(differ)} queries are not in both "
                    f"{system} and {FIRST_STAGE}, e.g. {list(differ[:5])}"
                )
            delta = values - base.loc[values.index]
            deltas[retriever][system] = delta.sort_values(ascending=False, kind="stable")
    return deltas


def per_query_delta_figure(per_query, metric: str = "ndcg@10"):
    """One panel per retriever: each system's per-query change against the first stage,
    sorted, over the query rank; the legend gives the mean and the queries up and down."""
    deltas = per_query_deltas(per_query, metric)
    fig, axes = plt.subplots(
        1, len(deltas), figsize=(4.6 * len(deltas), 3.6), squeeze=False, sharey=True
    )
    for ax, (retriever, systems) in zip(axes[0], deltas.items(), strict=True):
        ax.axhline(0.0, color="black", linewidth=0.8)
        queries = 0
        for system, delta in systems.items():
            queries = max(queries, len(delta))
            up, down = int((delta > 0).sum()), int((delta < 0).sum())
            ax.plot(
                np.arange(1, len(delta) + 1),
                delta.to_numpy(),
                drawstyle="steps-mid",
                marker="o" if len(delta) <= 60 else None,
                markersize=3,
                label=f"{system}: mean {delta.mean():+.3f}, {up} up, {down} down",
            )
        ax.set_title(f"{retriever} ({queries} queries)")
        ax.set_xlabel("query rank, by change")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(frameon=False, fontsize=7)
    axes[0][0].set_ylabel(f"{metric} minus {FIRST_STAGE}")
    return fig


def plot_per_query_delta(per_query, output, metric: str = "ndcg@10") -> None:
    _save(per_query_delta_figure(per_query, metric), output)


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 3600.0, "h"
    if seconds >= 2 * 60:
        return 60.0, "min"
    return 1.0, "s"


def depth_figure(table, metric: str = "ndcg@10"):
    """Per retriever (columns): `metric` against the rerank depth per system, the first
    stage as a dashed line; below, where measured, the estimated scoring time."""
    table = _retrievers(_table(table))
    retrievers = list(dict.fromkeys(table.retriever))
    systems = [s for s in dict.fromkeys(table.system) if s != FIRST_STAGE]
    colours = {s: f"C{i}" for i, s in enumerate(systems)}
    reranked = table[table.system != FIRST_STAGE]
    timed = reranked.est_seconds.notna().any()
    rows = 2 if timed else 1
    fig, axes = plt.subplots(
        rows,
        len(retrievers),
        figsize=(4.6 * len(retrievers), 3.4 * rows),
        squeeze=False,
        sharex=True,
    )
    depths = sorted(table.depth.unique())
    scale, unit = _time_unit(reranked.est_seconds.max() if timed else 0.0)
    for column, retriever in enumerate(retrievers):
        rows_r = table[table.retriever == retriever]
        ax = axes[0][column]
        first = rows_r[rows_r.system == FIRST_STAGE][metric]
        if len(first):
            ax.axhline(first.iloc[0], color="grey", linestyle="--", label=FIRST_STAGE)
        for system in systems:
            own = rows_r[rows_r.system == system].sort_values("depth")
            ax.plot(own.depth, own[metric], marker="o", color=colours[system], label=system)
        ax.set_title(retriever)
        ax.set_ylabel(metric)
        ax.legend(frameon=False, fontsize=8)
        if timed:
            ax = axes[1][column]
            for system in systems:
                own = rows_r[rows_r.system == system].sort_values("depth")
                ax.plot(own.depth, own.est_seconds / scale, marker="o", color=colours[system])
            ax.set_ylabel(f"estimated scoring time ({unit})")
            ax.set_ylim(bottom=0)
        for ax in axes[:, column]:
            ax.set_xscale("log")
            ax.set_xticks(depths, [str(d) for d in depths])
            ax.minorticks_off()
        axes[-1][column].set_xlabel("rerank depth (first-stage candidates reranked)")
    return fig


def plot_depth(table, output, metric: str = "ndcg@10") -> None:
    _save(depth_figure(table, metric), output)


def _field(path, field: str) -> list[float]:
    """One field of every record of merged scores: files the merge wrote and checked, so
    read line by line with the standard parser (2.6x faster than the checked reader)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f if line.strip()]


def plot_score_ecdf(
    reranked: dict[tuple[str, str], str], output, field: str = "logit_delta"
) -> None:
    """ECDF of the reranker's score per system, one panel per retriever."""
    retrievers = list(dict.fromkeys(r for r, _ in reranked))
    fig, axes = plt.subplots(1, len(retrievers), figsize=(4 * len(retrievers), 3.4), squeeze=False)
    for ax, retriever in zip(axes[0], retrievers, strict=True):
        for (r, system), path in reranked.items():
            if r != retriever:
                continue
            values = np.sort(_field(path, field))
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=system)
        ax.set_title(retriever)
        ax.set_xlabel(field)
        ax.set_ylabel("fraction of pairs")
        ax.legend(frameon=False, fontsize=8)
    _save(fig, output)


def plot_all(table, per_query, reranked, ndcg_png, per_query_png, ecdf_png) -> None:
    plot_ndcg(table, ndcg_png)
    plot_per_query_delta(per_query, per_query_png)
    plot_score_ecdf(reranked, ecdf_png)


def plot_teacher_p_yes(ranking, output) -> None:
    """Histogram of the teacher's p_yes for true positives and negatives."""
    records = [r for _, r in formats.read_jsonl(ranking, ("true_label", "teacher_p_yes"))]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    bins = np.linspace(0, 1, 21)
    for label, name in ((1, "relevant"), (0, "not relevant")):
        values = [r["teacher_p_yes"] for r in records if r["true_label"] == label]
        values = [v for v in values if v is not None]
        ax.hist(values, bins=bins, alpha=0.6, label=f"{name} (n={len(values)})")
    unlabelled = sum(r["teacher_p_yes"] is None for r in records)
    ax.set_xlabel("teacher p_yes")
    ax.set_ylabel("training pairs")
    ax.set_title(f"Teacher soft labels by true label ({unlabelled} pairs unlabelled)", fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    _save(fig, output)


def plot_training(logs: dict[str, str], output) -> None:
    """Loss per optimizer step of each training stage (one panel per stage)."""
    fig, axes = plt.subplots(1, len(logs), figsize=(4.5 * len(logs), 3.4), squeeze=False)
    for ax, (stage, path) in zip(axes[0], logs.items(), strict=True):
        table = pd.read_csv(path, sep="\t")
        terms = [c for c in ("loss", "listwise", "distill", "pointwise") if c in table]
        window = max(1, len(table) // 25)  # per-step losses are noisy: show a running mean
        for term in terms:
            smooth = table[term].rolling(window, min_periods=1).mean()
            (line,) = ax.plot(table.step, smooth, label=f"{term} (mean of {window})")
            ax.plot(table.step, table[term], color=line.get_color(), alpha=0.2, linewidth=0.5)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend(frameon=False, fontsize=8)
    _save(fig, output)
