"""Pairs, shards and merges: the bookkeeping around the model steps, without torch.

A sharded step (captions, teacher labels, scoring) takes the shard of each video
from `shard_of`, so every machine splits the same pairs the same way; the merge
steps put the shards' records back together and refuse a record seen twice. The
merges run on the submitting host of a cluster run, so this module imports no model
code: only `rankvideo.formats` (and `rankvideo.evaluate` for the cascade ranking).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections import Counter
from collections.abc import Iterable

from rankvideo import formats

log = logging.getLogger(__name__)

SCORE_FIELDS = ("logprob_yes", "logprob_no", "logit_delta", "p_yes")
# Fields a score record may carry beside SCORE_FIELDS (rankvideo.scoring writes them):
# the exact reading beside the served one (`scores: served`), what the served reading
# lacked, Qwen3-VL-Reranker's own bf16 sigmoid, and what a profile's cut removed.
EXACT_FIELDS = tuple(f"exact_{f}" for f in SCORE_FIELDS)
SERVED_FIELDS = ("served_missing", "served_fallback")
AUTHORS_FIELD = "authors_p_yes"
CUT_FIELDS = ("cut_tokens", "query_lost")
SERVED_TOP = 512  # the release's SamplingParams(logprobs=512): vLLM returns the top 512
OPTIONAL_FIELDS = (*EXACT_FIELDS, *SERVED_FIELDS, AUTHORS_FIELD, *CUT_FIELDS)
_COUNTS = ("served_missing", "cut_tokens")  # non-negative integers
_FLAGS = ("served_fallback", "query_lost")  # booleans


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


def check_score_record(path, number: int, record: dict, fields: tuple[str, ...]) -> None:
    """A score record holds exactly the optional fields `fields` names, of their types."""
    pair = (record.get("query_id"), record.get("doc_id"))
    present = tuple(f for f in OPTIONAL_FIELDS if f in record)
    if present != tuple(f for f in OPTIONAL_FIELDS if f in fields):
        raise formats.FormatError(
            path,
            number,
            f"pair {pair} has the fields {list(present) or 'none'} beside the scores, the "
            f"records before it {[f for f in OPTIONAL_FIELDS if f in fields] or 'none'}",
        )
    for field in (*SCORE_FIELDS, *present):
        value = record[field]
        if field in _FLAGS:
            ok = isinstance(value, bool)
        elif field in _COUNTS:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            ok = formats.is_number(value) and math.isfinite(value)
        if not ok:
            raise formats.FormatError(path, number, f"pair {pair}: {field} {value!r} is invalid")


def cut_counts(records: Iterable[dict]) -> dict:
    """Pairs, pairs cut to the model's input limit, and cut pairs that kept no query
    token (their video's queries all get one score) with their videos."""
    counts = {"pairs": 0, "cut": 0, "query_lost": 0, "videos_query_lost": set()}
    for r in records:
        counts["pairs"] += 1
        counts["cut"] += r.get("cut_tokens", 0) > 0
        if r.get("query_lost"):
            counts["query_lost"] += 1
            counts["videos_query_lost"].add(r["doc_id"])
    counts["videos_query_lost"] = sorted(counts["videos_query_lost"])
    return counts


def served_counts(records: Iterable[dict]) -> dict:
    """Pairs whose served score differs from the exact one (the served reading lacked an
    answer token), those of them that are the 0.0 fallback, and the largest
    |served - exact| logit_delta with and without a lacking token."""
    counts = {"pairs": 0, "differ": 0, "fallback": 0, "max_diff": 0.0, "max_rounding": 0.0}
    for r in records:
        if "served_missing" not in r:
            continue
        counts["pairs"] += 1
        diff = abs(r["logit_delta"] - r["exact_logit_delta"])
        if r["served_missing"]:
            counts["differ"] += 1
            counts["fallback"] += r["served_fallback"]
            counts["max_diff"] = max(counts["max_diff"], diff)
        else:
            counts["max_rounding"] = max(counts["max_rounding"], diff)
    return counts


def bf16_ties(records: Iterable[dict]) -> dict:
    """Candidate pairs of one query whose exact scores differ but whose `authors_p_yes`
    (Qwen3-VL-Reranker's bf16 sigmoid) is equal: the ties its own output would create;
    with the queries that have any."""
    groups: dict[str, dict[float, list[float]]] = {}
    for r in records:
        if AUTHORS_FIELD in r:
            exact = r.get("exact_logit_delta", r["logit_delta"])
            groups.setdefault(r["query_id"], {}).setdefault(r[AUTHORS_FIELD], []).append(exact)
    ties, queries = 0, []
    for qid, by_value in groups.items():
        tied = 0
        for exact in by_value.values():
            equal = sum(n * (n - 1) // 2 for n in Counter(exact).values())
            tied += len(exact) * (len(exact) - 1) // 2 - equal
        ties += tied
        if tied:
            queries.append(qid)
    return {"ties": ties, "queries": queries}


def log_counts(records: list[dict], where: str) -> dict:
    """Log what the scores' extra fields say (cut pairs, served against exact scores,
    bf16 ties) for the records of `where`; returns the counts."""
    counts = {
        "cut": cut_counts(records),
        "served": served_counts(records),
        "ties": bf16_ties(records),
    }
    cut = counts["cut"]
    if any(CUT_FIELDS[0] in r for r in records):
        log.info(
            "%s: %d of %d pairs cut to the model's input limit; %d of them (%d videos, e.g. "
            "%s) keep no query token, so every query of such a video gets one score",
            where, cut["cut"], cut["pairs"], cut["query_lost"],
            len(cut["videos_query_lost"]), ", ".join(cut["videos_query_lost"][:5]) or "none",
        )  # fmt: skip
    served = counts["served"]
    if served["pairs"]:
        log.info(
            "%s: %d of %d served scores differ from the exact ones (an answer token outside "
            "the top %s and the sampled token), %d of them the 0.0 fallback; largest "
            "|served - exact| logit_delta %.3g (%.3g where no token is lacking)",
            where, served["differ"], served["pairs"], SERVED_TOP, served["fallback"],
            served["max_diff"], served["max_rounding"],
        )  # fmt: skip
    ties = counts["ties"]
    if any(AUTHORS_FIELD in r for r in records):
        log.info(
            "%s: Qwen3-VL-Reranker's bf16 sigmoid (%s) ties %d candidate pairs whose exact "
            "scores differ, in %d queries (e.g. %s)",
            where, AUTHORS_FIELD, ties["ties"], len(ties["queries"]),
            ", ".join(ties["queries"][:5]) or "none",
        )  # fmt: skip
    return counts


def map_pairs(candidates) -> list[tuple[str, str]]:
    """The (query, video) pairs of a candidate map file, in its order."""
    return [(q, v) for v, qids in formats.read_candidates(candidates).items() for q in qids]


def write_cascade(records: list[dict], first_stage, depth: int, jsonl, run, system: str):
    """`write_reranked` over the first stage, which must rank every query of `records`."""
    first = formats.read_run(first_stage)
    unknown = sorted({r["query_id"] for r in records} - set(first))
    if unknown:
        raise ValueError(f"{first_stage}: no results for the candidate queries {unknown[:5]}")
    write_reranked(records, jsonl, run, system, first, depth)


def merge_scores(shards: list, candidates, first_stage, depth: int, jsonl, run, system: str):
    """One retriever's pairs from the system's shards; every candidate must be scored.

    Writes the pairs (`jsonl`), with every field the shards wrote, and the final cascade
    ranking over the first stage (`run`); logs the counts of `log_counts`.
    """
    scored = {}
    fields = None  # the optional fields of the first record: every other must match
    for path in shards:
        for number, r in formats.read_jsonl(path, ("query_id", "doc_id", *SCORE_FIELDS)):
            fields = fields if fields is not None else tuple(f for f in OPTIONAL_FIELDS if f in r)
            check_score_record(path, number, r, fields)
            pair = (r["query_id"], r["doc_id"])
            if pair in scored:
                raise formats.FormatError(path, number, f"pair {pair} is scored twice")
            scored[pair] = r
    wanted = map_pairs(candidates)
    missing = [pair for pair in wanted if pair not in scored]
    if missing:
        raise ValueError(
            f"{len(missing)} candidate pairs of {candidates} have no score, e.g. {missing[:5]}"
        )
    write_cascade([scored[p] for p in wanted], first_stage, depth, jsonl, run, system)
    log.info("merged %d pairs of %s into %s", len(wanted), candidates, jsonl)
    log_counts([scored[p] for p in wanted], f"{system} on {candidates}")
    return len(wanted)
