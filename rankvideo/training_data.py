"""Join teacher labels, captions, qrels and videos into training records.

`results/train/ranking.jsonl` holds the original release's training-record
format (query_id, query, doc_id, videos, true_label, teacher_p_yes, evidence,
teacher_reasoning) for stage 2; `results/train/captions.jsonl` holds one
caption record per training video for stage 1. `true_label` comes from the
qrels (relevance >= 1), `teacher_p_yes` from the teacher (null for judged
positives that the teacher did not label, which stage 2 keeps out of the
distillation loss). Counts per query go to a TSV and the log.
"""

from __future__ import annotations

import logging

import pandas as pd

from rankvideo import formats

log = logging.getLogger(__name__)

LABEL_FIELDS = ("query_id", "doc_id", "teacher_p_yes", "teacher_reasoning")


def synthesize(labels, captions, qrels, queries, manifest, train_ids) -> list[dict]:
    """Records for every teacher-labelled pair and every judged positive of a training query."""
    text = formats.read_queries(queries)
    teacher = {}
    for number, r in formats.read_jsonl(labels, LABEL_FIELDS):
        if r["query_id"] not in text:
            raise formats.FormatError(
                labels, number, f"query {r['query_id']!r} is not in {queries}"
            )
        pair = (r["query_id"], r["doc_id"])
        if pair in teacher:
            raise formats.FormatError(labels, number, f"duplicate label for ({pair[0]}, {pair[1]})")
        teacher[pair] = r
    judged = formats.read_qrels(qrels)
    videos = formats.read_manifest(manifest)
    caption = formats.read_texts(captions)
    pairs = dict.fromkeys(teacher)
    for qid in formats.read_ids(train_ids):
        for doc, rel in sorted(judged.get(qid, {}).items()):
            if rel > 0:
                pairs.setdefault((qid, doc))
    records = []
    for qid, doc in pairs:
        if doc not in videos:
            raise ValueError(f"pair ({qid}, {doc}): the video has no file in {manifest}")
        label = teacher.get((qid, doc), {})
        evidence = label.get("evidence") or {"caption": caption.get(doc, ""), "asr": ""}
        records.append(
            {
                "query_id": qid,
                "query": text[qid],
                "doc_id": doc,
                "videos": [videos[doc]],
                "true_label": int(judged.get(qid, {}).get(doc, 0) > 0),
                "teacher_p_yes": label.get("teacher_p_yes"),
                "evidence": evidence,
                "teacher_reasoning": label.get("teacher_reasoning", ""),
            }
        )
    return records


def caption_records(records: list[dict], reference: dict[str, str] | None = None) -> list[dict]:
    """One stage-1 record per training video with a non-empty caption.

    The caption is the record's evidence caption, or with `reference` the
    reference caption of the video (the demo's generator truth).
    """
    seen = {}
    for r in records:
        text = reference.get(r["doc_id"], "") if reference is not None else r["evidence"]["caption"]
        if r["doc_id"] not in seen and text.strip():
            seen[r["doc_id"]] = {"doc_id": r["doc_id"], "videos": r["videos"], "caption": text}
    return [seen[d] for d in sorted(seen)]


def per_query_counts(records: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "query_id": [r["query_id"] for r in records],
            "positive": [r["true_label"] == 1 for r in records],
            "teacher": [r["teacher_p_yes"] is not None for r in records],
            "no_caption": [not r["evidence"]["caption"].strip() for r in records],
        }
    )
    counts = table.groupby("query_id").agg(
        pairs=("positive", "size"),
        positives=("positive", "sum"),
        teacher_labelled=("teacher", "sum"),
        without_caption=("no_caption", "sum"),
    )
    counts["negatives"] = counts.pairs - counts.positives
    return counts.reset_index()[
        ["query_id", "pairs", "positives", "negatives", "teacher_labelled", "without_caption"]
    ]


def build(records: list[dict], ranking_out, captions_out, counts_out, reference=None) -> dict:
    """Write the stage-2 and stage-1 records and the per-query counts; log a summary."""
    formats.write_jsonl(ranking_out, records)
    stage1 = caption_records(records, reference)
    formats.write_jsonl(captions_out, stage1)
    counts = per_query_counts(records)
    counts.to_csv(counts_out, sep="\t", index=False)
    summary = {
        "pairs": len(records),
        "queries": len(counts),
        "positives": int(counts.positives.sum()),
        "negatives": int(counts.negatives.sum()),
        "queries_without_positive": int((counts.positives == 0).sum()),
        "queries_without_negative": int((counts.negatives == 0).sum()),
        "pairs_without_teacher_label": int(len(records) - counts.teacher_labelled.sum()),
        "pairs_without_caption": int(counts.without_caption.sum()),
        "caption_records": len(stage1),
    }
    log.info("training data: %s", summary)
    if summary["pairs_without_caption"]:
        log.warning(
            "%d training pairs have no (or an empty) caption", summary["pairs_without_caption"]
        )
    return summary


def build_from_config(
    mode: str, inputs: dict, ranking_out, captions_out, counts_out, stage1_captions="evidence"
) -> dict:
    """`synthesize`: from the teacher and captions steps; `archive`: the released records.

    Stage-1 captions are the records' evidence captions, or (`reference`) the
    data's reference captions.
    """
    if mode == "archive":
        records = formats.read_training_records(inputs["released"])
        if not records:
            raise ValueError(
                f"{inputs['released']}: the archive holds no training_data.json records"
            )
    elif mode == "synthesize":
        records = synthesize(
            inputs["labels"],
            inputs["captions"],
            inputs["qrels"],
            inputs["queries"],
            inputs["videos"],
            inputs["train"],
        )
    else:
        raise ValueError(f"training_data: {mode!r} is neither 'synthesize' nor 'archive'")
    reference = None
    if stage1_captions == "reference":
        reference = formats.read_texts(inputs["reference"])
        if not reference:
            raise ValueError(
                f"{inputs['reference']}: stage1.captions is 'reference' but there are none"
            )
    return build(records, ranking_out, captions_out, counts_out, reference)
