"""How good is the teacher? Its labels against the true labels of the training pairs.

The audit reads the joined training records (`results/train/ranking.jsonl`):
they exist whichever way the records were made (`training_data: synthesize` or
`archive`), carry the `true_label` that training uses and list every training
pair, the judged positives without a teacher score included. The teacher's own
records (`results/teacher/labels.jsonl`, only when the workflow synthesizes the
training data) add what the training records lack: the hard label, where it
came from (`label_source`), whether the answer was forced and the reasoning
length. A measure that needs them is NaN when they are missing, never 0.

Outputs: one row per measure (`measure`, `value`, `description`), the
calibration table (equal-width bins of `teacher_p_yes`) and a figure (a
reliability diagram and the ROC curve). No torch here.
"""

from __future__ import annotations

import argparse
import logging
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import mannwhitneyu  # noqa: E402

from rankvideo import formats  # noqa: E402
from rankvideo.options import positive_int

log = logging.getLogger(__name__)

DETAIL_FIELDS = ("teacher_label", "label_source", "forced_answer", "reasoning_tokens")
LABEL_SOURCES = ("answer", "score")
CALIBRATION_COLUMNS = [
    "bin",
    "lower",
    "upper",
    "count",
    "positives",
    "mean_predicted",
    "observed_rate",
]


def _number(value) -> float:
    """A JSON number (booleans as 1/0) as a float; None as NaN."""
    return math.nan if value is None else float(value)


def load_pairs(ranking, labels=None) -> pd.DataFrame:
    """One row per training record, with the teacher's details where they exist.

    Columns: `query_id`, `doc_id`, `true_label`, `p_yes` (NaN without a teacher
    score), `teacher_label`, `forced_answer`, `reasoning_tokens` (floats, NaN
    when unknown), `label_source` (None when unknown) and `hard_label` (the
    teacher's label where known, else `p_yes > 0.5`, NaN without a score) with
    `hard_label_from` (`teacher_label`, `p_yes` or None). The details come from
    `labels` when given, else from the record itself when it carries them.
    """
    details: dict[tuple[str, str], dict] = {}
    if labels is not None:
        for number, r in formats.read_jsonl(labels, ("query_id", "doc_id")):
            pair = (r["query_id"], r["doc_id"])
            if pair in details:
                raise formats.FormatError(labels, number, f"duplicate label for {pair}")
            details[pair] = {f: r[f] for f in DETAIL_FIELDS if f in r}
    rows, seen = [], set()
    for number, r in formats.read_jsonl(ranking, ("query_id", "doc_id", "true_label")):
        label = r["true_label"]
        if isinstance(label, bool) or label not in (0, 1):
            raise formats.FormatError(ranking, number, f"true_label {label!r} is not 0 or 1")
        pair = (r["query_id"], r["doc_id"])
        seen.add(pair)
        extra = details.get(pair) if labels is not None else r
        extra = extra or {}
        rows.append(
            {
                "query_id": r["query_id"],
                "doc_id": r["doc_id"],
                "true_label": int(label),
                "p_yes": _number(r.get("teacher_p_yes")),
                "teacher_label": _number(extra.get("teacher_label")),
                "label_source": extra.get("label_source"),
                "forced_answer": _number(extra.get("forced_answer")),
                "reasoning_tokens": _number(extra.get("reasoning_tokens")),
            }
        )
    stray = sorted(set(details) - seen)
    if stray:
        raise ValueError(
            f"{len(stray)} labelled pairs of {labels} are not in {ranking} "
            f"(first: {stray[0]}): the two files come from different runs"
        )
    columns = ["query_id", "doc_id", "true_label", "p_yes", *DETAIL_FIELDS]
    pairs = pd.DataFrame(rows, columns=columns)
    for column in ("p_yes", "teacher_label", "forced_answer", "reasoning_tokens"):
        pairs[column] = pairs[column].astype(float)
    scored = pairs.p_yes.notna()
    known = pairs.teacher_label.notna()
    pairs["hard_label"] = pairs.teacher_label.where(known, (pairs.p_yes > 0.5).astype(float))
    pairs.loc[~known & ~scored, "hard_label"] = math.nan
    pairs["hard_label_from"] = np.where(known, "teacher_label", np.where(scored, "p_yes", None))
    return pairs


def roc_auc(true_label, score) -> float:
    """ROC AUC of `score` for `true_label` (1/0): Mann-Whitney U / (n_pos n_neg).

    Ties count one half. NaN, with a warning, when one class is absent.
    """
    true_label, score = np.asarray(true_label), np.asarray(score, dtype=float)
    positive, negative = score[true_label == 1], score[true_label == 0]
    if len(positive) == 0 or len(negative) == 0:
        log.warning(
            "ROC AUC is undefined: %d positive and %d negative pairs have a teacher score",
            len(positive),
            len(negative),
        )
        return math.nan
    # the statistic is U of the first sample; the p-value (asymptotic: cheap) is unused
    u = mannwhitneyu(positive, negative, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (len(positive) * len(negative))


def roc_curve(true_label, score) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0)."""
    true_label, score = np.asarray(true_label), np.asarray(score, dtype=float)
    if len(score) == 0:
        return np.zeros(1), np.zeros(1)
    order = np.argsort(-score, kind="stable")
    hits, ranked = true_label[order] == 1, score[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # end of each tie group
    tp, fp = np.cumsum(hits)[last], np.cumsum(~hits)[last]
    n_pos, n_neg = hits.sum(), (~hits).sum()
    tpr = np.r_[0.0, tp / n_pos] if n_pos else np.full(len(last) + 1, math.nan)
    fpr = np.r_[0.0, fp / n_neg] if n_neg else np.full(len(last) + 1, math.nan)
    return fpr, tpr


def calibration(true_label, score, bins: int = 10) -> pd.DataFrame:
    """Per equal-width bin of `score` over [0, 1]: count, positives, mean score, positive rate.

    Bin k holds the scores in [k / bins, (k + 1) / bins), the last one also 1.0;
    an empty bin has NaN mean and rate.
    """
    true_label, score = np.asarray(true_label), np.asarray(score, dtype=float)
    index = np.clip(np.floor(score * bins).astype(int), 0, bins - 1)
    rows = []
    for k in range(bins):
        inside = index == k
        count = int(inside.sum())
        rows.append(
            {
                "bin": k,
                "lower": k / bins,
                "upper": (k + 1) / bins,
                "count": count,
                "positives": int((true_label[inside] == 1).sum()),
                "mean_predicted": float(score[inside].mean()) if count else math.nan,
                "observed_rate": float((true_label[inside] == 1).mean()) if count else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


def audit(pairs: pd.DataFrame, bins: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(measures: `measure`, `value`, `description`; the calibration table)."""
    n = len(pairs)
    scored = pairs[pairs.p_yes.notna()]
    hard = pairs[pairs.hard_label.notna()]
    detailed = pairs[pairs[list(DETAIL_FIELDS)].notna().any(axis=1)]
    forced = pairs.forced_answer.dropna()
    tokens = pairs.reasoning_tokens.dropna()
    sources = pairs.label_source.dropna()
    correct = hard.hard_label == hard.true_label
    table = calibration(scored.true_label, scored.p_yes, bins)
    filled = table[table["count"] > 0]
    gap = (filled.mean_predicted - filled.observed_rate).abs()
    nan = math.nan

    def share(part, whole):
        return part / whole if whole else nan

    def recall(label):
        group = hard[hard.true_label == label]
        return share(int((group.hard_label == label).sum()), len(group))

    measures = [
        ("pairs", n, "training pairs (records of ranking.jsonl)"),
        ("queries", pairs.query_id.nunique(), "training queries"),
        ("positives", int((pairs.true_label == 1).sum()), "pairs with true_label 1"),
        ("negatives", int((pairs.true_label == 0).sum()), "pairs with true_label 0"),
        ("pairs_with_score", len(scored), "pairs with a teacher_p_yes"),
        ("pairs_without_score", n - len(scored), "pairs without a teacher_p_yes"),
        ("share_without_score", share(n - len(scored), n), "pairs_without_score / pairs"),
        (
            "pairs_with_details",
            len(detailed),
            "pairs with any of teacher_label, label_source, forced_answer, reasoning_tokens "
            "(from labels.jsonl, else from the records; the archive's usually have none)",
        ),
        (
            "hard_label_from_teacher_label",
            int((hard.hard_label_from == "teacher_label").sum()),
            "pairs whose hard label is the teacher's teacher_label",
        ),
        (
            "hard_label_from_p_yes",
            int((hard.hard_label_from == "p_yes").sum()),
            "pairs without a teacher_label whose hard label is teacher_p_yes > 0.5",
        ),
        (
            "accuracy",
            share(int(correct.sum()), len(hard)),
            "share of pairs with a hard label (teacher_label, else teacher_p_yes > 0.5) "
            "equal to true_label",
        ),
        ("recall_positive", recall(1), "share of true positives with hard label 1"),
        ("recall_negative", recall(0), "share of true negatives with hard label 0"),
        (
            "roc_auc",
            roc_auc(scored.true_label, scored.p_yes),
            "ROC AUC of teacher_p_yes for true_label: Mann-Whitney U / (n_pos n_neg), "
            "ties count 1/2; NaN when one class has no score",
        ),
        ("auc_positives", int((scored.true_label == 1).sum()), "positives with a score"),
        ("auc_negatives", int((scored.true_label == 0).sum()), "negatives with a score"),
        (
            "brier",
            float(((scored.p_yes - scored.true_label) ** 2).mean()) if len(scored) else nan,
            "mean of (teacher_p_yes - true_label)^2",
        ),
        (
            "ece",
            share(float((filled["count"] * gap).sum()), len(scored)),
            f"expected calibration error over {bins} equal-width bins: "
            "sum of count / pairs_with_score x |mean predicted - observed rate|",
        ),
        (
            "forced_answers",
            int(forced.sum()) if len(forced) else nan,
            "pairs whose reasoning ran out of tokens and was closed for the teacher",
        ),
        (
            "forced_share",
            float(forced.mean()) if len(forced) else nan,
            "forced_answers / pairs whose forced_answer is known",
        ),
        (
            "reasoning_tokens_mean",
            float(tokens.mean()) if len(tokens) else nan,
            "reasoning tokens per pair, mean",
        ),
        (
            "reasoning_tokens_median",
            float(tokens.median()) if len(tokens) else nan,
            "reasoning tokens per pair, median",
        ),
        (
            "reasoning_tokens_max",
            int(tokens.max()) if len(tokens) else nan,
            "reasoning tokens per pair, maximum",
        ),
    ]
    known = sorted(set(sources) - set(LABEL_SOURCES))
    for source in (*LABEL_SOURCES, *known):
        measures.append(
            (
                f"label_source_{source}",
                int((sources == source).sum()) if len(sources) else nan,
                f"pairs whose teacher_label came from the {source}"
                + {"answer": " word after </think>", "score": "'s sign (no answer word)"}.get(
                    source, ""
                ),
            )
        )
    # object values: counts stay integers in the TSV, unknown ones are NaN
    table_out = pd.DataFrame(measures, columns=["measure", "value", "description"], dtype=object)
    return table_out, table


def plot_audit(pairs: pd.DataFrame, table: pd.DataFrame, output, auc: float) -> None:
    """Reliability diagram (with counts) and ROC curve of the teacher's p_yes."""
    scored = pairs[pairs.p_yes.notna()]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    filled = table[table["count"] > 0]
    if len(filled):
        left.plot(filled.mean_predicted, filled.observed_rate, "o-", label="teacher")
        for row in filled.itertuples():
            left.annotate(
                f"n={row.count}",
                (row.mean_predicted, row.observed_rate),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    else:
        left.text(0.5, 0.5, "no pair has a teacher score", ha="center", va="center")
    left.set_xlim(0, 1)
    left.set_ylim(-0.02, 1.05)
    left.set_xlabel("mean teacher p_yes in the bin")
    left.set_ylabel("observed share of relevant pairs")
    left.set_title(f"Reliability ({len(table)} bins, {len(scored)} scored pairs)", fontsize=9)
    left.legend(frameon=False, fontsize=8, loc="upper left")

    right.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    if math.isnan(auc):
        right.text(0.5, 0.5, "undefined: one class has no score", ha="center", va="center")
        right.set_title("ROC of teacher p_yes", fontsize=9)
    else:
        fpr, tpr = roc_curve(scored.true_label, scored.p_yes)
        positives = int((scored.true_label == 1).sum())
        right.plot(fpr, tpr, label="teacher")
        right.set_title(
            f"ROC of teacher p_yes: AUC {auc:.3f} "
            f"({positives} relevant, {len(scored) - positives} not)",
            fontsize=9,
        )
    right.set_xlim(0, 1)
    right.set_ylim(0, 1.02)
    right.set_xlabel("false positive rate")
    right.set_ylabel("true positive rate")
    right.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(output, dpi=150)
    plt.close(fig)
    log.info("wrote %s", output)


def run(ranking, labels, audit_out, calibration_out, plot_out, bins: int = 10) -> pd.DataFrame:
    """Audit the teacher: write the measures, the calibration table and the figure."""
    pairs = load_pairs(ranking, labels)
    if labels is None:
        log.info("no teacher records: hard label from p_yes > 0.5, forced answers unknown")
    measures, table = audit(pairs, bins)
    measures.to_csv(audit_out, sep="\t", index=False, na_rep="NaN")
    table.to_csv(calibration_out, sep="\t", index=False, na_rep="NaN")
    auc = measures.set_index("measure").value["roc_auc"]
    plot_audit(pairs, table, plot_out, auc)
    summary = dict(zip(measures.measure, measures.value, strict=True))
    log.info("teacher audit: %s", summary)
    return measures


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranking", required=True, help="training records (ranking.jsonl)")
    parser.add_argument("--labels", help="the teacher's records (labels.jsonl), when there are")
    parser.add_argument("--audit", required=True, help="output: measures TSV")
    parser.add_argument("--calibration", required=True, help="output: calibration bins TSV")
    parser.add_argument("--plot", required=True, help="output: PNG figure")
    parser.add_argument("--bins", type=positive_int, default=10, help="equal-width bins of p_yes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    measures = run(args.ranking, args.labels, args.audit, args.calibration, args.plot, args.bins)
    print(measures[["measure", "value"]].to_string(index=False))


if __name__ == "__main__":
    main()
