"""Evaluation figures: per-query changes against the first stage, nDCG bars."""

import pandas as pd
import pytest

from rankvideo import formats
from rankvideo.plots import (
    ndcg_figure,
    per_query_delta_figure,
    per_query_deltas,
    plot_all,
    plot_per_query_delta,
)

PNG = b"\x89PNG\r\n\x1a\n"
# nDCG@10 per retriever, system and query
NDCG = {
    "r1": {
        "first_stage": {"q1": 0.5, "q2": 0.2, "q3": 0.0, "q4": 1.0},
        "A": {"q1": 0.7, "q2": 0.2, "q3": 0.4, "q4": 0.9},
        "B": {"q1": 0.1, "q2": 0.3, "q3": 0.0, "q4": 1.0},
    },
    "r2": {
        "first_stage": {"q1": 0.1, "q2": 0.1, "q3": 0.1, "q4": 0.1},
        "A": {"q1": 0.2, "q2": 0.6, "q3": 0.0, "q4": 0.1},
        "B": {"q1": 0.1, "q2": 0.1, "q3": 0.1, "q4": 0.3},
    },
}


def per_query_table() -> pd.DataFrame:
    rows = [
        {"retriever": r, "system": s, "query_id": q, "in_run": True, "ndcg@10": v}
        for r, systems in NDCG.items()
        for s, values in systems.items()
        for q, v in values.items()
    ]
    return pd.DataFrame(rows)


def expected_deltas(retriever, system):
    first = NDCG[retriever]["first_stage"]
    own = NDCG[retriever][system]
    return sorted((own[q] - first[q] for q in own), reverse=True)


def test_per_query_deltas_are_sorted_changes():
    deltas = per_query_deltas(per_query_table())
    assert list(deltas) == ["r1", "r2"]
    assert list(deltas["r1"]) == ["A", "B"]  # the first stage is the reference, not a line
    for retriever in NDCG:
        for system in ("A", "B"):
            assert list(deltas[retriever][system]) == pytest.approx(
                expected_deltas(retriever, system)
            )
    # which query each change belongs to is kept
    assert deltas["r2"]["A"].index[0] == "q2"


def test_per_query_delta_figure_has_a_panel_per_retriever(tmp_path):
    table = per_query_table()
    fig = per_query_delta_figure(table)
    assert [ax.get_title() for ax in fig.axes] == ["r1 (4 queries)", "r2 (4 queries)"]
    for ax, retriever in zip(fig.axes, NDCG, strict=True):
        zero = [line for line in ax.lines if list(line.get_ydata()) == [0, 0]]
        assert zero, "no zero line"
        for system in ("A", "B"):
            (line,) = [line for line in ax.lines if line.get_label().startswith(f"{system}:")]
            assert list(line.get_xdata()) == [1, 2, 3, 4]
            assert list(line.get_ydata()) == pytest.approx(expected_deltas(retriever, system))
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "A: mean +0.125, 2 up, 1 down" in labels  # +0.2, 0, +0.4, -0.1
    assert "B: mean -0.075, 1 up, 1 down" in labels  # -0.4, +0.1, 0, 0
    # from a TSV file, as the workflow writes it
    table.to_csv(tmp_path / "per_query.tsv", sep="\t", index=False)
    plot_per_query_delta(tmp_path / "per_query.tsv", tmp_path / "delta.png")
    png = (tmp_path / "delta.png").read_bytes()
    assert png[:8] == PNG and 10_000 < len(png) < 2_000_000


def test_mean_rows_are_no_panel_and_no_bar_group():
    table = per_query_table()
    mean = table[table.retriever == "r1"].assign(retriever="mean")
    fig = per_query_delta_figure(pd.concat([table, mean]))
    assert len(fig.axes) == 2
    summary = table.groupby(["retriever", "system"], sort=False)["ndcg@10"].mean().reset_index()
    means = summary.groupby("system", sort=False)["ndcg@10"].mean().reset_index()
    fig = ndcg_figure(pd.concat([summary, means.assign(retriever="mean")]))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["r1", "r2"]
    assert len(ax.patches) == 2 * 3  # retrievers x systems


def test_queries_missing_from_one_system_are_an_error():
    table = per_query_table()
    table = table[~((table.system == "B") & (table.query_id == "q3"))]
    with pytest.raises(ValueError, match=r"r1/B: 1 queries are not in both.*'q3'"):
        per_query_deltas(table)


def test_plot_all_writes_every_figure(tmp_path):
    per_query = per_query_table()
    per_query.to_csv(tmp_path / "per_query.tsv", sep="\t", index=False)
    summary = per_query.groupby(["retriever", "system"], sort=False)["ndcg@10"].mean()
    summary.reset_index().to_csv(tmp_path / "ndcg.tsv", sep="\t", index=False)
    reranked = {}
    for retriever in NDCG:
        for system in ("A", "B"):
            path = tmp_path / f"{retriever}_{system}.jsonl"
            formats.write_jsonl(
                path,
                [
                    {"query_id": q, "doc_id": "d", "logit_delta": float(i)}
                    for i, q in enumerate("abc")
                ],
            )
            reranked[(retriever, system)] = path
    outputs = [tmp_path / f"{name}.png" for name in ("ndcg", "delta", "ecdf")]
    plot_all(tmp_path / "ndcg.tsv", tmp_path / "per_query.tsv", reranked, *outputs)
    for output in outputs:
        assert output.read_bytes()[:8] == PNG
