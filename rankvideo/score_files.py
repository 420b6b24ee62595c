"""Scores from elsewhere as a system: a file of per-pair scores, read strictly.

A system under `rerank.models` may name a `file` instead of a model: the release's
rerank output or our own (`.jsonl`: query_id, doc_id, logit_delta, and optionally
logprob_yes, logprob_no, p_yes), a run in TREC format (`qid Q0 doc rank score tag`;
the score column is the score), or a JSON run `{query_id: {doc_id: score}}`. The
file must score every pair of the retriever's candidate map once, with finite numbers;
a missing pair is an error that counts and names them, a pair outside the map is
counted and named in the log and left out. The pairs then go where a model's merged
scores go (`rankvideo.pairs.write_cascade`), so the table, significance, depth and
plots treat the system like any other.

    python -m rankvideo.score_files --scores run.trec --candidates cand.json \
        --first-stage first.json --depth 100 --output-dir out --name published
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from rankvideo import formats
from rankvideo.pairs import SCORE_FIELDS, map_pairs, write_cascade

log = logging.getLogger(__name__)

SHOWN = 10  # pairs named in a message


def read_score_file(path) -> dict[tuple[str, str], dict]:
    """{(query_id, doc_id): score record} of a `.jsonl`, JSON or TREC score file."""
    if formats._kind(path) == ".jsonl":
        return _read_score_jsonl(path)
    run = formats.read_run(path)
    return {
        (qid, doc): {"query_id": qid, "doc_id": doc, "logit_delta": score}
        for qid, docs in run.items()
        for doc, score in docs.items()
    }


def _read_score_jsonl(path) -> dict[tuple[str, str], dict]:
    records: dict[tuple[str, str], dict] = {}
    lines: dict[tuple[str, str], int] = {}
    for number, r in formats.read_jsonl(path, ("query_id", "doc_id", "logit_delta")):
        pair = tuple(_id(path, number, r, field) for field in ("query_id", "doc_id"))
        if pair in records:
            raise formats.FormatError(
                path, number, f"pair {pair} is scored twice (first on line {lines[pair]})"
            )
        record = {"query_id": pair[0], "doc_id": pair[1]}
        for field in SCORE_FIELDS:
            if field not in r:
                continue
            value = r[field]
            if not (formats.is_number(value) and math.isfinite(value)):
                raise formats.FormatError(
                    path, number, f"pair {pair}: {field} {value!r} is not a finite number"
                )
            record[field] = float(value)
        records[pair], lines[pair] = record, number
    return records


def _id(path, number: int, record: dict, field: str) -> str:
    value = record[field]
    if not isinstance(value, str):
        raise formats.FormatError(path, number, f"{field} {value!r} is not a string")
    return formats.checked_id(path, number, field, value)


def _examples(pairs: list[tuple[str, str]]) -> str:
    shown = ", ".join(f"({q}, {d})" for q, d in pairs[:SHOWN])
    return shown + (f" and {len(pairs) - SHOWN} more" if len(pairs) > SHOWN else "")


def import_scores(
    scores, candidates, first_stage, depth: int, jsonl, run, system: str, others=()
) -> dict:
    """One retriever's pairs of `system` from its score file; returns the counts.

    `others` are the other retrievers' candidate maps, when one file serves them all:
    its pairs of those maps are counted apart from pairs of no map.
    """
    scored = read_score_file(scores)
    wanted = map_pairs(candidates)
    if not wanted:
        raise ValueError(f"{candidates}: the candidate map holds no pairs")
    missing = [pair for pair in wanted if pair not in scored]
    if missing:
        raise ValueError(
            f"{scores}: {len(missing)} of the {len(wanted)} candidate pairs of {candidates} "
            f"have no score (system {system}): {_examples(sorted(missing))}"
        )
    wanted_set = set(wanted)
    extra = sorted(pair for pair in scored if pair not in wanted_set)
    known = {pair for path in others for pair in map_pairs(path)}
    foreign = [pair for pair in extra if pair not in known]
    counts = {"pairs": len(wanted), "extra": len(extra), "in_no_map": len(foreign)}
    if foreign:
        log.warning(
            "%s: %d scored pairs are in no candidate map%s and are left out: %s",
            scores, len(foreign), f" ({candidates}, {', '.join(map(str, others))})" if others
            else f" ({candidates})", _examples(foreign),
        )  # fmt: skip
    if len(extra) > len(foreign):
        log.info(
            "%s: %d scored pairs belong to the other retrievers' candidate maps",
            scores, len(extra) - len(foreign),
        )  # fmt: skip
    write_cascade([scored[p] for p in wanted], first_stage, depth, jsonl, run, system)
    log.info(
        "%s: %d pairs of %s as system %s into %s", scores, len(wanted), candidates, system, jsonl
    )
    return counts


def main(argv=None):
    from rankvideo.options import positive_int

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", required=True, help=".jsonl, JSON or TREC score file")
    parser.add_argument("--candidates", required=True, help="candidate map {video: [queries]}")
    parser.add_argument("--first-stage", required=True, help="first-stage run (JSON or TREC)")
    parser.add_argument("--depth", type=positive_int, required=True, help="cascade depth")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--name", required=True, help="system name: <name>.jsonl and <name>.run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    import_scores(
        args.scores, args.candidates, args.first_stage, args.depth,
        out / f"{args.name}.jsonl", out / f"{args.name}.run", args.name,
    )  # fmt: skip


if __name__ == "__main__":
    main()
