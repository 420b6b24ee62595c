"""Figures of the evaluation: nDCG@10 per retriever x system, score ECDFs."""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rankvideo import formats  # noqa: E402

log = logging.getLogger(__name__)


def _save(fig, output) -> None:
    fig.tight_layout()
    fig.savefig(output, dpi=150)
    plt.close(fig)
    log.info("wrote %s", output)


def plot_ndcg(table, output, metric: str = "ndcg@10") -> None:
    """Grouped bars: one group per retriever, one bar per system."""
    summary = pd.read_csv(table, sep="\t")
    wide = summary.pivot(index="retriever", columns="system", values=metric)
    systems = list(dict.fromkeys(summary.system))  # table order: first_stage first
    wide = wide[systems]
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
    _save(fig, output)


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
            values = np.sort([rec[field] for _, rec in formats.read_jsonl(path, (field,))])
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=system)
        ax.set_title(retriever)
        ax.set_xlabel(field)
        ax.set_ylabel("fraction of pairs")
        ax.legend(frameon=False, fontsize=8)
    _save(fig, output)


def plot_all(table, reranked, ndcg_png, ecdf_png) -> None:
    plot_ndcg(table, ndcg_png)
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
