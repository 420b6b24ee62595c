"""Readers and writers for the file formats of the original RANKVIDEO release.

Every reader validates as it goes and raises `FormatError` naming the file and
line of the first bad record, so a malformed input never turns into a silently
shorter table.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

TRAINING_RECORD_FIELDS = ("query_id", "query", "doc_id", "videos", "true_label")


class FormatError(ValueError):
    """A malformed input file; the message starts with `path:line:`."""

    def __init__(self, path, line: int | None, message: str):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def _open_text(path, mode="rt"):
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def _lines(path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers."""
    with _open_text(path) as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line


def _parse_float(path, number, text, what) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, number, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise FormatError(path, number, f"{what} {text!r} is not finite")
    return value


# --- queries: TSV query_id<TAB>query_text -------------------------------------------


def read_queries(path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise FormatError(path, number, "expected 'query_id<TAB>query_text'")
        qid, text = fields[0].strip(), fields[1].strip()
        if qid in queries:
            raise FormatError(path, number, f"duplicate query id {qid!r}")
        queries[qid] = text
    if not queries:
        raise FormatError(path, None, "no queries")
    return queries


def write_queries(path, queries: dict[str, str]) -> None:
    with _open_text(path, "wt") as f:
        for qid, text in queries.items():
            if "\t" in text or "\n" in text:
                raise ValueError(f"query {qid!r} contains a tab or newline")
            f.write(f"{qid}\t{text}\n")


# --- qrels: TREC 'qid 0 docid rel' -------------------------------------------------


def read_qrels(path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise FormatError(path, number, "expected 'query_id 0 doc_id relevance'")
        qid, _, docid, rel = fields
        try:
            grade = int(rel)
        except ValueError:
            raise FormatError(path, number, f"relevance {rel!r} is not an integer") from None
        if docid in qrels.setdefault(qid, {}):
            raise FormatError(path, number, f"duplicate judgement for ({qid}, {docid})")
        qrels[qid][docid] = grade
    if not qrels:
        raise FormatError(path, None, "no judgements")
    return qrels


def write_qrels(path, qrels: dict[str, dict[str, int]]) -> None:
    with _open_text(path, "wt") as f:
        for qid, docs in qrels.items():
            for docid, rel in docs.items():
                f.write(f"{qid} 0 {docid} {rel}\n")


# --- runs: JSON {qid: {docid: score}} or TREC 'qid Q0 docid rank score tag' ---------


def read_run(path) -> dict[str, dict[str, float]]:
    """A first-stage or reranked run, as JSON (optionally gzipped) or a TREC run file."""
    name = Path(path).name.removesuffix(".gz")
    if name.endswith(".json"):
        return read_run_json(path)
    return read_trec_run(path)


def read_run_json(path) -> dict[str, dict[str, float]]:
    try:
        with _open_text(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise FormatError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise FormatError(path, None, "expected an object {query_id: {doc_id: score}}")
    run = {}
    for qid, docs in data.items():
        if not isinstance(docs, dict):
            raise FormatError(path, None, f"query {qid!r}: expected {{doc_id: score}}")
        run[str(qid)] = {}
        for docid, score in docs.items():
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise FormatError(path, None, f"({qid}, {docid}): score {score!r} is not a number")
            if not math.isfinite(score):
                raise FormatError(path, None, f"({qid}, {docid}): score {score!r} is not finite")
            run[str(qid)][str(docid)] = float(score)
    return run


def write_run_json(path, run: dict[str, dict[str, float]]) -> None:
    with _open_text(path, "wt") as f:
        json.dump(run, f, indent=1)
        f.write("\n")


def read_trec_run(path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 6:
            raise FormatError(path, number, "expected 'query_id Q0 doc_id rank score tag'")
        qid, _, docid, _, score, _ = fields
        if docid in run.setdefault(qid, {}):
            raise FormatError(path, number, f"duplicate entry for ({qid}, {docid})")
        run[qid][docid] = _parse_float(path, number, score, "score")
    return run


def ranked(docs: dict[str, float], tiebreak: dict[str, int] | None = None) -> list[str]:
    """Doc ids by descending score; ties by `tiebreak` rank, then by doc id."""
    tiebreak = tiebreak or {}
    return sorted(docs, key=lambda d: (-docs[d], tiebreak.get(d, math.inf), d))


def write_trec_run(path, run: dict[str, dict[str, float]], tag: str) -> None:
    with _open_text(path, "wt") as f:
        for qid, docs in run.items():
            for rank, docid in enumerate(ranked(docs), start=1):
                f.write(f"{qid} Q0 {docid} {rank} {docs[docid]:.6f} {tag}\n")


# --- candidate maps: JSON {video_id: [query_id, ...]} -------------------------------


def read_candidates(path) -> dict[str, list[str]]:
    try:
        with _open_text(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise FormatError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(q, str) for q in v) for v in data.values()
    ):
        raise FormatError(path, None, "expected an object {video_id: [query_id, ...]}")
    return data


def write_candidates(path, candidates: dict[str, list[str]]) -> None:
    with _open_text(path, "wt") as f:
        json.dump(candidates, f, indent=1)
        f.write("\n")


def invert_run(run: dict[str, dict[str, float]], depth: int) -> dict[str, list[str]]:
    """The candidate map {video: [queries]} of the top `depth` documents of each query."""
    candidates: dict[str, list[str]] = {}
    for qid, docs in run.items():
        for docid in ranked(docs)[:depth]:
            candidates.setdefault(docid, []).append(qid)
    return dict(sorted(candidates.items()))


# --- JSON lines ---------------------------------------------------------------------


def read_jsonl(path, required: Iterable[str] = ()) -> Iterator[tuple[int, dict]]:
    """(line number, record) for every record, checking that `required` keys exist."""
    required = tuple(required)
    for number, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise FormatError(path, number, f"invalid JSON: {e.msg}") from None
        if not isinstance(record, dict):
            raise FormatError(path, number, "expected a JSON object")
        missing = [key for key in required if key not in record]
        if missing:
            raise FormatError(path, number, f"missing field(s) {', '.join(missing)}")
        yield number, record


def write_jsonl(path, records: Iterable[dict]) -> int:
    count = 0
    with _open_text(path, "wt") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_training_records(path) -> list[dict]:
    """Training records of the release format, with their labels checked."""
    records = []
    for number, record in read_jsonl(path, TRAINING_RECORD_FIELDS):
        if record["true_label"] not in (0, 1):
            raise FormatError(path, number, f"true_label {record['true_label']!r} is not 0 or 1")
        p = record.get("teacher_p_yes")
        if p is not None and not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
            raise FormatError(path, number, f"teacher_p_yes {p!r} is not a probability")
        if not isinstance(record["videos"], list) or not record["videos"]:
            raise FormatError(path, number, "videos must be a non-empty list of paths")
        records.append(record)
    return records


# --- id lists and video manifests ---------------------------------------------------


def read_ids(path) -> list[str]:
    ids = [line.strip() for _, line in _lines(path)]
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    if duplicates:
        raise FormatError(path, None, f"duplicate ids: {', '.join(sorted(duplicates)[:5])}")
    return ids


def write_ids(path, ids: Iterable[str]) -> None:
    with _open_text(path, "wt") as f:
        f.writelines(f"{i}\n" for i in ids)


def read_manifest(path) -> dict[str, str]:
    """Video manifest: TSV doc_id<TAB>path."""
    manifest = {}
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 2:
            raise FormatError(path, number, "expected 'doc_id<TAB>video_path'")
        if fields[0] in manifest:
            raise FormatError(path, number, f"duplicate video id {fields[0]!r}")
        manifest[fields[0]] = fields[1]
    return manifest


def write_manifest(path, manifest: dict[str, str]) -> None:
    with _open_text(path, "wt") as f:
        for docid, video in manifest.items():
            f.write(f"{docid}\t{video}\n")


def append_jsonl(stream, records: Iterable[dict]) -> None:
    """Append records to an open text stream and flush, so a crash loses nothing written."""
    for record in records:
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    stream.flush()


def merge_jsonl(paths: Iterable, output, key: tuple[str, ...]) -> int:
    """Concatenate JSON-lines shards sorted by `key`; a key seen twice is an error."""
    records = {}
    for path in paths:
        for number, record in read_jsonl(path, key):
            k = tuple(record[f] for f in key)
            if k in records:
                raise FormatError(
                    path, number, f"{dict(zip(key, k, strict=True))} is in two shards"
                )
            records[k] = record
    return write_jsonl(output, (records[k] for k in sorted(records)))
