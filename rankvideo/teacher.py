"""The teacher step: rank1-style labels for training pairs from the videos' captions.

`judge_pairs` judges (video, query) pairs resumably, `label_shard` is the workflow's
job, on the engine the config names (`make_teacher`: transformers, or vllm). The model
itself is `rankvideo.reasoner.ReasoningTeacher` (its names are importable from here).
"""

from __future__ import annotations

import logging

from tqdm import tqdm

from rankvideo import formats
from rankvideo.elsewhere import in_engine_environment, is_vllm
from rankvideo.fingerprint import digest
from rankvideo.pairs import candidate_pairs, check_shard, shard_of
from rankvideo.reasoner import Evidence, ReasoningTeacher, parse_generation  # noqa: F401
from rankvideo.resumable import ResumableOutput

log = logging.getLogger(__name__)


def judge_pairs(
    teacher, pairs, queries: dict, captions: dict, asr: dict, output, as_scores: bool = False
) -> list[dict]:
    """Judge (video, query) pairs from their captions into `output`; resumable.

    With `as_scores` the records also carry `logit_delta` and `p_yes`, the
    fields of a reranked pair (the caption_reasoner system).

    Every query must be in `queries` and every video must have a caption record
    (an empty caption is allowed and counted); a missing one is an error naming it.
    """
    unknown = sorted({q for _, q in pairs} - set(queries))
    if unknown:
        raise ValueError(
            f"{len(unknown)} candidate query ids are not in the queries file: {unknown[:5]}"
        )
    uncaptioned = sorted({v for v, _ in pairs} - set(captions))
    if uncaptioned:
        raise ValueError(f"{len(uncaptioned)} candidate videos have no caption: {uncaptioned[:5]}")
    empty = len({v for v, _ in pairs if not captions[v].strip()})
    if empty:
        log.warning("%d videos have an empty caption; the teacher sees '(none)'", empty)
    keys = [(q, v) for v, q in pairs]
    fingerprint = {
        "teacher": teacher.identity(),
        "as_scores": as_scores,
        "inputs": digest([(q, queries[q], captions[v], asr.get(v, "")) for q, v in keys]),
    }
    store = ResumableOutput(
        output, ("query_id", "doc_id"), ("teacher_p_yes",), fingerprint=fingerprint
    )
    todo = store.pending(keys)
    with store, tqdm(total=len(todo), unit="pair", desc="judging", mininterval=5) as progress:
        for start in range(0, len(todo), teacher.batch_size):
            chunk = todo[start : start + teacher.batch_size]
            evidence = [Evidence(captions[v], asr.get(v, "")) for _, v in chunk]
            judged = teacher.judge([queries[q] for q, _ in chunk], evidence)
            store.add(
                [
                    {
                        "query_id": q,
                        "doc_id": v,
                        "query": queries[q],
                        "evidence": {"caption": e.caption, "asr": e.asr},
                        **j,
                        **(
                            {"logit_delta": j["teacher_logit_delta"], "p_yes": j["teacher_p_yes"]}
                            if as_scores
                            else {}
                        ),
                    }
                    for (q, v), e, j in zip(chunk, evidence, judged, strict=True)
                ]
            )
            progress.update(len(chunk))
    records = store.finish(keys)
    forced = sum(r["forced_answer"] for r in records)
    log.info(
        "judged %d pairs (%d resumed); %d answers forced", len(todo), len(keys) - len(todo), forced
    )
    return records


def make_teacher(model: str, settings: dict, engine: dict | None = None) -> ReasoningTeacher:
    """The teacher on its engine: transformers (the default) or vllm (rankvideo.vllm_engine)."""
    if is_vllm(engine):
        from rankvideo.vllm_engine import VLLMTeacher

        return VLLMTeacher(model, engine=engine, **settings)
    return ReasoningTeacher(model, **settings)


@in_engine_environment
def label_shard(
    candidates,
    queries,
    captions,
    model: str,
    output,
    shard: int,
    shards: int,
    settings: dict,
    asr=None,
    engine: dict | None = None,
):
    """Teacher labels for this shard's share of the training candidates; with `engine`
    vllm in another environment, the labelling runs there (rankvideo.elsewhere)."""
    check_shard(shard, shards)
    pairs = [
        p
        for p in candidate_pairs([formats.read_candidates(candidates)])
        if shard_of(p[0], shards) == shard
    ]
    log.info("shard %d/%d: %d pairs", shard, shards, len(pairs))
    teacher = make_teacher(model, settings, engine)
    return judge_pairs(
        teacher,
        pairs,
        formats.read_queries(queries),
        formats.read_captions(captions),
        formats.read_asr(asr),
        output,
    )
