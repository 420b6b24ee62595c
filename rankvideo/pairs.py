"""Pairs, shards and merges: the bookkeeping around the model steps, without torch.

A sharded step (captions, teacher labels, scoring) takes the shard of each video
from `shard_of`, so every machine splits the same pairs the same way; the merge
steps put the shards' records back together and refuse a record seen twice. The
merges run on the submitting host of a cluster run, so this module imports no model
code: only `rankvideo.formats` (and `rankvideo.evaluate` for the cascade ranking).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable

from rankvideo import formats

log = logging.getLogger(__name__)

SCORE_FIELDS = ("logprob_yes", "logprob_no", "logit_delta", "p_yes")


def shard_of(video_id: str, shards: int) -> int:
    """Stable shard of a video (the same on every machine and Python run)."""
    return zlib.crc32(video_id.encode()) % shards


def check_shard(shard: int, shards: int) -> None:
    """A shard index outside 0..shards-1 would silently select no pairs."""
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}: the index must be in 0..{shards - 1}")


def candidate_pairs(candidate_maps: Iterable[dict[str, list[str]]]) -> list[tuple[str, str]]:
    """The union of (video, query) pairs of several candidate maps, in video order."""
    return sorted(
        {(video, qid) for cmap in candidate_maps for video, qids in cmap.items() for qid in qids}
    )


def merge_records(paths: Iterable, output, key: tuple[str, ...]) -> int:
    """Concatenate JSON-lines shards sorted by `key`; a key seen twice is an error."""
    records = {}
    for path in paths:
        for number, record in formats.read_jsonl(path, key):
            k = tuple(record[f] for f in key)
            if k in records:
                raise formats.FormatError(
                    path, number, f"{dict(zip(key, k, strict=True))} is in two shards"
                )
            records[k] = record
    return formats.write_jsonl(output, (records[k] for k in sorted(records)))


def write_reranked(
    records: list[dict], jsonl, run, tag: str, first_stage: dict | None = None, depth: int = 0
) -> None:
    """Per-pair scores sorted by query and descending score, and the TREC run.

    With the first-stage run, ties fall back to its order and the TREC run is the final
    cascade ranking (the reranked top `depth`, then the first-stage rest) as rank-based
    scores, so trec_eval on the file reports the row that `evaluate` writes. Without it
    (the command line's candidates only), the run holds the scores themselves.
    """
    # the cascade is evaluate's; imported here so the captions and teacher merges,
    # which write no run, do not load pandas and pytrec_eval
    from rankvideo.evaluate import cascade

    by_query: dict[str, dict[str, dict]] = {}
    for r in records:
        by_query.setdefault(r["query_id"], {})[r["doc_id"]] = r
    ordered = []
    trec: dict[str, dict[str, float]] = {}
    for qid in sorted(by_query):
        scores = {d: r["logit_delta"] for d, r in by_query[qid].items()}
        if first_stage is None:
            ordered += [by_query[qid][d] for d in formats.ranked(scores)]
            trec[qid] = scores
            continue
        final = cascade(first_stage[qid], scores, depth, f"{jsonl}: query {qid}")
        ordered += [by_query[qid][d] for d in final[: len(scores)]]
        trec[qid] = {d: float(len(final) - i) for i, d in enumerate(final)}
    formats.write_jsonl(jsonl, ordered)
    formats.write_trec_run(run, trec, tag)


def merge_scores(shards: list, candidates, first_stage, depth: int, jsonl, run, system: str):
    """One retriever's pairs from the system's shards; every candidate must be scored.

    Writes the pairs (`jsonl`) and the final cascade ranking over the first stage (`run`).
    """
    scored = {}
    for path in shards:
        for number, r in formats.read_jsonl(path, ("query_id", "doc_id", *SCORE_FIELDS)):
            pair = (r["query_id"], r["doc_id"])
            if pair in scored:
                raise formats.FormatError(path, number, f"pair {pair} is scored twice")
            scored[pair] = r
    wanted = [(q, v) for v, qids in formats.read_candidates(candidates).items() for q in qids]
    missing = [pair for pair in wanted if pair not in scored]
    if missing:
        raise ValueError(
            f"{len(missing)} candidate pairs of {candidates} have no score, e.g. {missing[:5]}"
        )
    first = formats.read_run(first_stage)
    unknown = sorted({q for q, _ in wanted} - set(first))
    if unknown:
        raise ValueError(f"{first_stage}: no results for the candidate queries {unknown[:5]}")
    write_reranked([scored[p] for p in wanted], jsonl, run, system, first, depth)
    log.info("merged %d pairs of %s into %s", len(wanted), candidates, jsonl)
    return len(wanted)
