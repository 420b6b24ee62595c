"""The teacher audit: its measures on hand-made labels, its figure, its rule."""

import logging
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rankvideo import formats
from rankvideo.teacher_audit import audit, calibration, load_pairs, main, roc_auc, roc_curve, run

SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# (query, doc, true_label, teacher_p_yes, teacher_label, label_source, forced, tokens);
# teacher_label None: the pair has no teacher record (a judged positive it did not see)
PAIRS = [
    ("q1", "a", 1, 0.95, 1, "answer", False, 10),
    ("q1", "b", 1, 0.45, 1, "answer", False, 20),  # the answer says yes, the score no
    ("q1", "c", 0, 0.15, 0, "score", True, 30),
    ("q1", "d", 0, 0.55, 1, "score", True, 30),
    ("q2", "e", 1, 0.85, 1, "answer", False, 40),
    ("q2", "f", 0, 0.05, 0, "answer", False, 50),
    ("q2", "g", 1, None, None, None, None, None),
    ("q2", "h", 1, None, None, None, None, None),
]


def write_pairs(folder, pairs=PAIRS):
    ranking, labels = folder / "ranking.jsonl", folder / "labels.jsonl"
    formats.write_jsonl(
        ranking,
        [
            {"query_id": q, "doc_id": d, "true_label": t, "teacher_p_yes": p}
            for q, d, t, p, *_ in pairs
        ],
    )
    formats.write_jsonl(
        labels,
        [
            {
                "query_id": q,
                "doc_id": d,
                "teacher_p_yes": p,
                "teacher_label": label,
                "label_source": source,
                "forced_answer": forced,
                "reasoning_tokens": tokens,
            }
            for q, d, _, p, label, source, forced, tokens in pairs
            if label is not None
        ],
    )
    return ranking, labels


def measures_of(table):
    return dict(zip(table.measure, table.value, strict=True))


@pytest.mark.parametrize(
    "true_label, score, expected",
    [
        ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0),  # perfect ranking
        ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),  # reversed
        ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], 0.5),  # all tied
        ([1, 1, 0, 0], [0.9, 0.3, 0.5, 0.1], 0.75),  # 3 of 4 (pos, neg) pairs in order
        ([1, 0, 0], [0.4, 0.4, 0.1], 0.75),  # one tie (1/2) and one win
    ],
)
def test_roc_auc_by_hand(true_label, score, expected):
    assert roc_auc(true_label, score) == pytest.approx(expected)
    fpr, tpr = roc_curve(true_label, score)
    assert np.trapezoid(tpr, fpr) == pytest.approx(expected)  # the curve's area agrees
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)


@pytest.mark.parametrize("true_label", [[1, 1, 1], [0, 0, 0], []])
def test_roc_auc_of_one_class_is_nan_with_a_warning(true_label, caplog):
    with caplog.at_level(logging.WARNING, logger="rankvideo.teacher_audit"):
        assert math.isnan(roc_auc(true_label, [0.2, 0.5, 0.9][: len(true_label)]))
    assert "ROC AUC is undefined" in caplog.text


def test_calibration_bins_by_hand():
    table = calibration([1, 0, 0, 1, 1, 0], [0.0, 0.05, 0.12, 0.18, 0.95, 1.0])
    assert list(table["count"]) == [2, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert list(table.positives) == [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert table.mean_predicted[0] == pytest.approx(0.025)
    assert table.mean_predicted[1] == pytest.approx(0.15)
    assert table.mean_predicted[9] == pytest.approx(0.975)  # 1.0 falls in the last bin
    assert list(table.observed_rate[[0, 1, 9]]) == [0.5, 0.5, 0.5]
    assert table.loc[2:8, ["mean_predicted", "observed_rate"]].isna().all().all()
    assert list(table.lower) == pytest.approx(np.arange(10) / 10)


def test_audit_measures_by_hand(tmp_path):
    ranking, labels = write_pairs(tmp_path)
    measures, table = audit(load_pairs(ranking, labels))
    m = measures_of(measures)
    assert (m["pairs"], m["queries"], m["positives"], m["negatives"]) == (8, 2, 5, 3)
    assert (m["pairs_with_score"], m["pairs_without_score"]) == (6, 2)
    assert m["share_without_score"] == pytest.approx(0.25)
    assert m["pairs_with_details"] == 6
    # hard labels are the teacher's: b (label 1, p 0.45) right, d (label 1, p 0.55) wrong
    assert (m["hard_label_from_teacher_label"], m["hard_label_from_p_yes"]) == (6, 0)
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["recall_positive"] == pytest.approx(1.0)
    assert m["recall_negative"] == pytest.approx(2 / 3)
    # scores: positives 0.95, 0.45, 0.85; negatives 0.15, 0.55, 0.05: 8 of 9 in order
    assert m["roc_auc"] == pytest.approx(8 / 9)
    assert (m["auc_positives"], m["auc_negatives"]) == (3, 3)
    brier = (0.05**2 + 0.55**2 + 0.15**2 + 0.55**2 + 0.15**2 + 0.05**2) / 6
    assert m["brier"] == pytest.approx(brier)
    # bins 0 (0.05: neg), 1 (0.15: neg), 4 (0.45: pos), 5 (0.55: neg), 8 (0.85: pos),
    # 9 (0.95: pos): each gap is |p - y|, as in the Brier score
    assert list(table["count"]) == [1, 1, 0, 0, 1, 1, 0, 0, 1, 1]
    assert m["ece"] == pytest.approx((0.05 + 0.15 + 0.55 + 0.55 + 0.15 + 0.05) / 6)
    assert m["forced_answers"] == 2 and m["forced_share"] == pytest.approx(2 / 6)
    assert m["reasoning_tokens_mean"] == pytest.approx(30)
    assert (m["reasoning_tokens_median"], m["reasoning_tokens_max"]) == (30, 50)
    assert (m["label_source_answer"], m["label_source_score"]) == (4, 2)


def test_without_teacher_records_hard_labels_come_from_p_yes_and_details_are_nan(tmp_path):
    ranking, _ = write_pairs(tmp_path)
    measures, _ = audit(load_pairs(ranking))
    m = measures_of(measures)
    assert (m["hard_label_from_teacher_label"], m["hard_label_from_p_yes"]) == (0, 6)
    # p_yes > 0.5: a right, b wrong (0.45), c right, d wrong (0.55), e right, f right
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["roc_auc"] == pytest.approx(8 / 9) and m["pairs_without_score"] == 2
    assert m["pairs_with_details"] == 0
    unknown = ["forced_answers", "forced_share", "reasoning_tokens_mean"]
    unknown += ["reasoning_tokens_median", "reasoning_tokens_max"]
    unknown += ["label_source_answer", "label_source_score"]
    for name in unknown:
        assert math.isnan(m[name]), name


def test_records_that_carry_the_details_need_no_labels_file(tmp_path):
    ranking = tmp_path / "ranking.jsonl"
    first = {"query_id": "q", "doc_id": "a", "true_label": 1, "teacher_p_yes": 0.4}
    second = {"query_id": "q", "doc_id": "b", "true_label": 0, "teacher_p_yes": 0.6}
    formats.write_jsonl(ranking, [{**first, "teacher_label": 1, "forced_answer": True}, second])
    m = measures_of(audit(load_pairs(ranking))[0])
    assert (m["hard_label_from_teacher_label"], m["hard_label_from_p_yes"]) == (1, 1)
    assert m["accuracy"] == pytest.approx(1 / 2) and m["forced_share"] == 1.0
    assert math.isnan(m["reasoning_tokens_mean"]) and math.isnan(m["label_source_answer"])


def test_one_class_absent_gives_nan_auc_and_a_warning(tmp_path, caplog):
    ranking, labels = write_pairs(tmp_path, [p for p in PAIRS if p[2] == 1])
    with caplog.at_level(logging.WARNING, logger="rankvideo.teacher_audit"):
        run(ranking, labels, *(tmp_path / n for n in ("a.tsv", "c.tsv", "p.png")))
    assert "ROC AUC is undefined: 3 positive and 0 negative" in caplog.text
    table = pd.read_csv(tmp_path / "a.tsv", sep="\t", index_col="measure")
    assert (tmp_path / "a.tsv").read_text().count("roc_auc\tNaN\t") == 1
    assert math.isnan(table.value["roc_auc"]) and math.isnan(table.value["recall_negative"])
    assert float(table.value["accuracy"]) == 1.0


def test_labels_of_pairs_outside_the_records_are_an_error(tmp_path):
    ranking, labels = write_pairs(tmp_path)
    formats.write_jsonl(ranking, [{"query_id": "q1", "doc_id": "a", "true_label": 1}])
    with pytest.raises(ValueError, match="5 labelled pairs .* are not in"):
        load_pairs(ranking, labels)


def test_outputs_and_entry_point(tmp_path, capsys):
    ranking, labels = write_pairs(tmp_path)
    audit_tsv, calibration_tsv, plot = (tmp_path / n for n in ("a.tsv", "c.tsv", "p.png"))
    args = ["--ranking", ranking, "--labels", labels, "--audit", audit_tsv]
    main([str(a) for a in [*args, "--calibration", calibration_tsv, "--plot", plot]])
    assert "roc_auc" in capsys.readouterr().out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(audit_tsv, sep="\t")
    assert list(table.columns) == ["measure", "value", "description"]
    assert table.set_index("measure").value["roc_auc"] == pytest.approx(8 / 9)
    bins = pd.read_csv(calibration_tsv, sep="\t")
    assert len(bins) == 10 and bins["count"].sum() == 6


def test_figure_without_any_score(tmp_path):
    ranking, labels = write_pairs(tmp_path, [p for p in PAIRS if p[3] is None])
    measures = run(ranking, labels, *(tmp_path / n for n in ("a.tsv", "c.tsv", "p.png")))
    m = measures_of(measures)
    assert m["pairs_without_score"] == 2 and m["share_without_score"] == 1.0
    assert math.isnan(m["accuracy"]) and math.isnan(m["ece"]) and math.isnan(m["brier"])
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_the_module_imports_neither_torch_nor_snakemake():
    code = "import sys, rankvideo.teacher_audit\n"
    code += "print(sorted({'torch', 'snakemake'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "config, labels",
    [([], True), (["--config", "training_data=archive"], False)],
    ids=["synthesize", "archive"],
)
def test_dry_run_plans_the_audit(workdir, config, labels):
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "results/teacher/audit.tsv", *config, "--quiet", "rules"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "teacher_audit" in result.stdout and "training_data" in result.stdout
    assert ("teacher_merge" in result.stdout) == labels
