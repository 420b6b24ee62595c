"""Readers and writers for the file formats of the original RANKVIDEO release.

Every reader validates as it goes and raises `FormatError` naming the file and
line of the first bad record, so a malformed input never turns into a silently
shorter table. Inputs are UTF-8 (a byte-order mark and CRLF line ends are read
like plain files), optionally gzipped (`.gz`); a JSON object that names a key
twice is an error, not "the last one wins".

Ids are read in Unicode NFC, so a file name written in NFD (as macOS writes
them) matches the same id typed in NFC; an id that holds whitespace is refused
where it enters, because the TREC files written later split their lines on it.

Queries and qrels are also read in MultiVENT 2.0's formats, chosen by the file
name: queries as CSV (`.csv`) with a `Query_id,query` header, judgements as JSON
lines (`.jsonl`, `.json`) of `{query_id, doc_id, relevance}`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

TRAINING_RECORD_FIELDS = ("query_id", "query", "doc_id", "videos", "true_label")
JUDGEMENT_FIELDS = ("query_id", "doc_id", "relevance")

log = logging.getLogger(__name__)


class FormatError(ValueError):
    """A malformed input file; the message starts with `path:line:` (or, for an entry of
    a JSON array, `path: record N:`)."""

    def __init__(self, path, line: int | str | None, message: str):
        if isinstance(line, str):
            where = f"{path}: {line}"
        else:
            where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def _open_text(path, mode="wt"):
    """A text stream to write (readers go through `_lines` and `_read_text`)."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


BOM = b"\xef\xbb\xbf"


@contextmanager
def _reading(path):
    """The file's bytes, gunzipped for a `.gz` name; a corrupt gzip file is a FormatError."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            yield f
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise FormatError(path, None, f"not a readable gzip file ({e})") from None


def _decode(path, raw: bytes, number: int, offset: int) -> str:
    """UTF-8 text of `raw`, which starts at line `number` and byte `offset` of the file."""
    if offset == 0 and raw.startswith(BOM):
        raw, offset = raw[len(BOM) :], len(BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = number + raw.count(b"\n", 0, e.start)
        raise FormatError(
            path,
            line,
            f"not UTF-8 text: byte 0x{raw[e.start]:02x} at byte offset {offset + e.start}",
        ) from None


def _lines(path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, without their line ends (LF or CRLF)."""
    offset = 0
    with _reading(path) as f:
        for number, raw in enumerate(f, start=1):
            line = _decode(path, raw, number, offset).rstrip("\r\n")
            offset += len(raw)
            if line.strip():
                yield number, line


def _read_text(path) -> str:
    with _reading(path) as f:
        raw = f.read()
    return _decode(path, raw, 1, 0)


# --- JSON: a key named twice is an error -------------------------------------------


class _Repeated(dict):
    """A JSON object that names `key` twice."""

    key: str


def _parse_json(text: str):
    """(value, where) with where = (keys down to the object, repeated key), or None."""
    repeated = []

    def build(pairs):
        value = dict(pairs)
        if len(value) < len(pairs):
            seen = set()
            value = _Repeated(value)
            value.key = next(k for k, _ in pairs if k in seen or seen.add(k))
            repeated.append(value)
        return value

    value = json.loads(text, object_pairs_hook=build)
    # the walk runs only for a bad file, so a large run costs nothing extra
    return value, (_find_repeated(value) if repeated else None)


def _find_repeated(value, parents=()):
    if isinstance(value, _Repeated):
        return parents, value.key
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in children:
        if isinstance(child, (dict, list)) and (found := _find_repeated(child, (*parents, key))):
            return found
    return None


def _repeated_message(parents, key, nouns) -> str:
    """'duplicate doc id 'v1' in query 'q1'' with nouns ('query', 'doc') for the depths."""
    if len(parents) < len(nouns):
        where = "".join(f" in {noun} {p!r}" for noun, p in zip(nouns, parents, strict=False))
        return f"duplicate {nouns[len(parents)]} id {key!r}{where}"
    where = f" in {' > '.join(map(repr, parents))}" if parents else ""
    return f"duplicate key {key!r}{where}"


def _read_json(path, nouns: tuple[str, ...] = ()):
    """A JSON file; `nouns` name the keys of each depth in the error for a repeated key."""
    try:
        value, repeated = _parse_json(_read_text(path))
    except json.JSONDecodeError as e:
        raise FormatError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if repeated:
        raise FormatError(path, None, _repeated_message(*repeated, nouns))
    return value


def _parse_float(path, number, text, what) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, number, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise FormatError(path, number, f"{what} {text!r} is not finite")
    return value


# --- queries: TSV query_id<TAB>query_text, or CSV Query_id,query ---------------------


def _kind(path) -> str:
    """The format suffix of `path`, lower case, without a `.gz`: '.csv', '.jsonl', ..."""
    return Path(Path(path).name.removesuffix(".gz")).suffix.lower()


def read_queries(path) -> dict[str, str]:
    """{query_id: text} from a TSV file, or from a CSV file (`.csv`, `.csv.gz`)."""
    queries = _read_queries_csv(path) if _kind(path) == ".csv" else _read_queries_tsv(path)
    if not queries:
        raise FormatError(path, None, "no queries")
    return queries


def _read_queries_tsv(path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise FormatError(path, number, "expected 'query_id<TAB>query_text'")
        qid = checked_id(path, number, "query id", fields[0].strip())
        _add_query(queries, path, number, qid, fields[1].strip())
    return queries


def _add_query(queries: dict, path, number: int, qid: str, text: str) -> None:
    if qid in queries:
        raise FormatError(path, number, f"duplicate query id {qid!r}")
    queries[qid] = text


CSV_ID_NAMES = ("query_id",)
CSV_TEXT_NAMES = ("query", "query_text")


def _read_queries_csv(path) -> dict[str, str]:
    """MultiVENT 2.0's queries: a `Query_id,query` header, then one quoted CSV record each.

    A text may hold commas, quotes and line breaks inside its quotes; its runs of
    whitespace become single spaces, because the normalised TSV has no room for a
    tab or a line break and the models read them as spaces anyway.
    """
    records = _csv_records(path)
    header = next(records, None)
    if header is None:
        return {}
    columns = _csv_columns(path, *header)
    queries: dict[str, str] = {}
    collapsed = 0
    for number, row in records:
        qid, text = _csv_query(path, number, row, columns)
        clean = " ".join(text.split())
        collapsed += clean != text.strip()
        _add_query(queries, path, number, qid, clean)
    if collapsed:
        log.info("%s: collapsed the whitespace of %d query texts", path, collapsed)
    return queries


def _csv_query(path, number: int, row: list[str], columns: tuple[int, int]) -> tuple[str, str]:
    """(id, text as written) of one CSV record, checked."""
    if len(row) != 2:
        hint = "; a text that holds a comma must be in double quotes" if len(row) > 2 else ""
        raise FormatError(
            path, number, f"expected 2 fields (Query_id,query), found {len(row)}{hint}"
        )
    qid, text = checked_id(path, number, "query id", row[columns[0]].strip()), row[columns[1]]
    if not text.strip():
        raise FormatError(path, number, f"query {qid!r} has an empty text")
    return qid, text


def _csv_records(path) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) of every non-blank CSV record."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise FormatError(path, start, _csv_problem(e, reader.line_num)) from None
        if any(field.strip() for field in row) or len(row) > 1:
            yield start, row


def _csv_problem(error: csv.Error, last_line: int) -> str:
    if str(error) == "unexpected end of data":  # what csv says of a quote left open
        return f"a quote opened in this record is never closed (the file ends at line {last_line})"
    return f"invalid CSV: {error}"


def _csv_columns(path, number: int, header: list[str]) -> tuple[int, int]:
    """Positions of the id and the text in `header`, whose names are read in any case."""
    names = [name.strip().lower() for name in header]
    ids = [i for i, name in enumerate(names) if name in CSV_ID_NAMES]
    texts = [i for i, name in enumerate(names) if name in CSV_TEXT_NAMES]
    if len(names) != 2 or len(ids) != 1 or len(texts) != 1:
        raise FormatError(
            path,
            number,
            "expected the header 'Query_id,query' (or query_id,query_text, in any case), "
            f"found {','.join(header)!r}",
        )
    return ids[0], texts[0]


WHITESPACE = re.compile(r"\s")


def checked_id(path, number: int | str | None, what: str, value: str) -> str:
    """`value` in NFC; an empty id or one holding whitespace is a FormatError.

    Ids go into whitespace-separated files (qrels, TREC runs, id lists), where a
    space would split one id into two columns.
    """
    if not value or WHITESPACE.search(value):
        raise FormatError(path, number, f"{what} {value!r} is empty or holds whitespace")
    return nfc(value)


def nfc(value: str) -> str:
    """`value` in Unicode NFC (an ASCII id is returned as it is, without the lookup)."""
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def write_queries(path, queries: dict[str, str]) -> None:
    with _open_text(path, "wt") as f:
        for qid, text in queries.items():
            if "\t" in text or "\n" in text:
                raise ValueError(f"query {qid!r} contains a tab or newline")
            f.write(f"{qid}\t{text}\n")


# --- qrels: TREC 'qid 0 docid rel', or JSON lines {query_id, doc_id, relevance} -----


def read_qrels(path) -> dict[str, dict[str, int]]:
    """{query_id: {doc_id: grade}} from TREC qrels, or JSON lines (`.jsonl`, `.json`)."""
    if _kind(path) in (".jsonl", ".json"):
        qrels = _read_qrels_jsonl(path)
    else:
        qrels = _read_qrels_trec(path)
    if not qrels:
        raise FormatError(path, None, "no judgements")
    return qrels


def _read_qrels_trec(path) -> dict[str, dict[str, int]]:
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
        _add_judgement(qrels, path, number, nfc(qid), nfc(docid), grade)
    return qrels


def _read_qrels_jsonl(path) -> dict[str, dict[str, int]]:
    """Ids may be JSON strings or integers (7 is the id '7'); a grade is an integer (2 or 2.0).

    Floats and booleans are refused as ids: 7.0 or true is a writer's mistake, and
    guessing an id from it could join the wrong video.
    """
    qrels: dict[str, dict[str, int]] = {}
    for number, record in read_jsonl(path, JUDGEMENT_FIELDS):
        qid = _json_id(path, number, "query_id", record["query_id"])
        docid = _json_id(path, number, "doc_id", record["doc_id"])
        _add_judgement(qrels, path, number, qid, docid, _json_grade(path, number, record))
    return qrels


def _json_grade(path, number: int, record: dict) -> int:
    grade = record["relevance"]
    if isinstance(grade, float) and grade.is_integer():
        return int(grade)
    if not is_number(grade) or isinstance(grade, float):
        raise FormatError(path, number, f"relevance {grade!r} is not an integer")
    return grade


def _json_id(path, number: int, field: str, value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise FormatError(path, number, f"{field} {value!r} is not a string or an integer")
    return checked_id(path, number, field, value)


def _add_judgement(qrels: dict, path, number: int, qid: str, docid: str, grade: int) -> None:
    if docid in qrels.setdefault(qid, {}):
        raise FormatError(path, number, f"duplicate judgement for ({qid}, {docid})")
    qrels[qid][docid] = grade


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
    data = _read_json(path, ("query", "doc"))
    if not isinstance(data, dict):
        raise FormatError(path, None, "expected an object {query_id: {doc_id: score}}")
    run = {}
    for qid, docs in data.items():
        if not isinstance(docs, dict):
            raise FormatError(path, None, f"query {qid!r}: expected {{doc_id: score}}")
        if not docs:
            # most likely a retriever that failed on the query: leaving it out says so
            raise FormatError(
                path, None, f"query {qid!r} has no documents (leave it out: it then counts as 0)"
            )
        key = _json_key(path, "query id", qid)
        if key in run:  # two spellings of one id (NFC and NFD)
            raise FormatError(path, None, f"query {_two_spellings(qid, key)}")
        scores = run[key] = _plain_scores(docs)
        if scores is not None:
            continue
        scores = run[key] = {}
        for docid, score in docs.items():
            if not is_number(score):
                raise FormatError(path, None, f"({qid}, {docid}): score {score!r} is not a number")
            if not math.isfinite(score):
                raise FormatError(path, None, f"({qid}, {docid}): score {score!r} is not finite")
            doc = _json_key(path, "doc id", docid)
            if doc in scores:  # two spellings of one id (NFC and NFD)
                raise FormatError(
                    path, None, f"doc id {_two_spellings(docid, doc)} in query {qid!r}"
                )
            scores[doc] = float(score)
    return run


def _plain_scores(docs: dict) -> dict[str, float] | None:
    """`docs` as it is when every id is non-empty ASCII without whitespace and every score
    a finite number (a first stage of 1,000 documents per query, checked at once); None
    sends it through the per-document checks, which name what is wrong."""
    ids = list(docs)
    joined = "\x00".join(ids)
    if "" in docs or not joined.isascii() or WHITESPACE.search(joined):
        return None
    values = list(docs.values())
    if not all(type(v) is float or type(v) is int for v in values):  # bool is neither
        return None
    array = np.array(values, dtype=np.float64)
    if not np.isfinite(array).all():
        return None
    return dict(zip(ids, array.tolist(), strict=True))


def _json_key(path, what: str, value: str) -> str:
    """A checked id of a JSON file, whose error names the line that first holds it."""
    try:
        return checked_id(path, None, what, value)
    except FormatError:
        raise FormatError(
            path, _json_line(path, value), f"{what} {value!r} is empty or holds whitespace"
        ) from None


def _two_spellings(value: str, key: str) -> str:
    return f"{ascii(value)} is there twice: once spelled {ascii(key)}, the same in Unicode NFC"


def _json_line(path, value: str) -> int | None:
    """The line where the JSON string `value` first appears (read again: errors only)."""
    text = _read_text(path)
    for written in (json.dumps(value, ensure_ascii=False), json.dumps(value)):
        if (at := text.find(written)) >= 0:
            return text.count("\n", 0, at) + 1
    return None


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
        qid, docid = nfc(fields[0]), nfc(fields[2])
        score = fields[4]
        if docid in run.setdefault(qid, {}):
            raise FormatError(path, number, f"duplicate entry for ({qid}, {docid})")
        run[qid][docid] = _parse_float(path, number, score, "score")
    return run


def ranked(docs: dict[str, float], tiebreak: dict[str, int] | None = None) -> list[str]:
    """Doc ids by descending score; ties by `tiebreak` rank, then by doc id descending.

    Without `tiebreak` this is trec_eval's order (it keeps scores in single
    precision, so scores equal there tie), and a run's first-stage numbers match
    what trec_eval and pytrec_eval report on the same file. One numpy sort (a first
    stage of MultiVENT's size ranks 1,000 documents for each of thousands of queries).
    """
    ids = list(docs)
    if len(ids) < 2:
        return ids
    with np.errstate(over="ignore"):  # beyond single precision: infinite, as in trec_eval
        single = np.fromiter(docs.values(), dtype=np.float64, count=len(ids)).astype(np.float32)
    by_id = np.argsort(np.array(ids), kind="stable")
    id_key = np.empty(len(ids), dtype=np.int64)
    id_key[by_id] = np.arange(len(ids) - 1, -1, -1)  # the largest id first
    keys = [id_key]
    if tiebreak:
        keys.append(np.array([tiebreak.get(d, math.inf) for d in ids], dtype=np.float64))
    keys.append(-single)  # np.lexsort: the last key decides first
    return [ids[i] for i in np.lexsort(keys)]


def write_trec_run(path, run: dict[str, dict[str, float]], tag: str) -> None:
    """Every digit of the scores, so trec_eval sees no ties that the ranks do not have."""
    with _open_text(path, "wt") as f:
        for qid, docs in run.items():
            _writable(path, "query id", qid)
            for rank, docid in enumerate(ranked(docs), start=1):
                _writable(path, "doc id", docid)
                f.write(f"{qid} Q0 {docid} {rank} {float(docs[docid])!r} {tag}\n")


def _writable(path, what: str, value: str) -> None:
    """A last guard: never write a line that `read_trec_run` would split differently."""
    if not value or WHITESPACE.search(value):
        raise ValueError(f"{path}: cannot write {what} {value!r}: it is empty or holds whitespace")


# --- candidate maps: JSON {video_id: [query_id, ...]} -------------------------------


def read_candidates(path) -> dict[str, list[str]]:
    """{video_id: [query_id, ...]}; an empty map is valid here (a shard may have no pairs):
    the callers that need pairs say so."""
    data = _read_json(path, ("video",))
    if not isinstance(data, dict):
        raise FormatError(path, None, "expected an object {video_id: [query_id, ...]}")
    candidates: dict[str, list[str]] = {}
    for video, queries in data.items():
        if not isinstance(queries, list):
            raise FormatError(
                path, None, f"video {video!r}: expected a list of query ids, not {queries!r}"
            )
        seen: dict[str, None] = {}
        for qid in queries:
            if not isinstance(qid, str):
                raise FormatError(path, None, f"video {video!r}: query id {qid!r} is not a string")
            qid = _json_key(path, "query id", qid)
            if qid in seen:
                raise FormatError(path, None, f"video {video!r}: query {qid!r} is listed twice")
            seen[qid] = None
        key = _json_key(path, "video id", video)
        if key in candidates:  # two spellings of one id (NFC and NFD)
            raise FormatError(path, None, f"video {_two_spellings(video, key)}")
        candidates[key] = list(seen)
    return candidates


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


def _checked_record(path, where: int | str, record, required: tuple[str, ...]) -> dict:
    """`record` when it is a JSON object holding every `required` key; else a FormatError."""
    if not isinstance(record, dict):
        raise FormatError(path, where, "expected a JSON object")
    missing = [key for key in required if key not in record]
    if missing:
        raise FormatError(path, where, f"missing field(s) {', '.join(missing)}")
    return record


def read_jsonl(path, required: Iterable[str] = ()) -> Iterator[tuple[int, dict]]:
    """(line number, record) for every record, checking that `required` keys exist."""
    required = tuple(required)
    for number, line in _lines(path):
        try:
            record, repeated = _parse_json(line)
        except json.JSONDecodeError as e:
            raise FormatError(path, number, f"invalid JSON: {e.msg}") from None
        if repeated:
            raise FormatError(path, number, _repeated_message(*repeated, ()))
        yield number, _checked_record(path, number, record, required)


def write_jsonl(path, records: Iterable[dict]) -> int:
    count = 0
    with _open_text(path, "wt") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _json_records(path, required: Iterable[str]) -> Iterator[tuple[int | str, dict]]:
    """(where, record) of JSON lines, or of one JSON array of objects (a `.json` file may
    hold either: the release names its JSON-lines training records `training_data.json`)."""
    with _reading(path) as f:
        head = f.read(1 << 12).removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head.startswith(b"["):
        yield from read_jsonl(path, required)
        return
    required = tuple(required)
    for index, record in enumerate(_read_json(path), start=1):
        where = f"record {index}"
        yield where, _checked_record(path, where, record, required)


def read_training_records(path, with_paths: bool = True) -> list[dict]:
    """Training records of the release format, with their labels checked.

    `with_paths=False` lets a record leave out `videos`: the release's records are
    given this machine's paths on extraction, so theirs are not needed. As the
    release's training reads them, a record without `true_label` takes its
    `teacher_label`, and `teacher_p_yes` may sit under `meta`; both are counted and
    logged.
    """
    required = [
        f for f in TRAINING_RECORD_FIELDS if f != "true_label" and (with_paths or f != "videos")
    ]
    records, from_teacher, from_meta = [], 0, 0
    for number, record in _json_records(path, required):
        if "true_label" not in record:
            if "teacher_label" not in record:
                raise FormatError(path, number, "missing field(s) true_label (and teacher_label)")
            record = {**record, "true_label": record["teacher_label"]}
            from_teacher += 1
        for field in ("query_id", "doc_id"):  # ids as every other reader holds them
            if not isinstance(record[field], str):
                raise FormatError(path, number, f"{field} {record[field]!r} is not a string")
            record = {**record, field: checked_id(path, number, field, record[field])}
        label = record["true_label"]
        if isinstance(label, bool) or label not in (0, 1):  # True == 1, but not a label
            raise FormatError(path, number, f"true_label {label!r} is not 0 or 1")
        meta = record.get("meta")
        if record.get("teacher_p_yes") is None and isinstance(meta, dict):
            if meta.get("teacher_p_yes") is not None:
                record = {**record, "teacher_p_yes": meta["teacher_p_yes"]}
                from_meta += 1
        p = record.get("teacher_p_yes")
        if p is not None and not (is_number(p) and 0.0 <= p <= 1.0):
            raise FormatError(path, number, f"teacher_p_yes {p!r} is not a probability")
        videos = record.get("videos")  # present unless not required
        if "videos" in record and not (
            isinstance(videos, list) and videos and all(isinstance(v, str) for v in videos)
        ):
            raise FormatError(path, number, "videos must be a non-empty list of paths")
        records.append(record)
    if from_teacher:
        log.warning(
            "%s: %d records have no true_label; their teacher_label is used, as the "
            "release's training does", path, from_teacher,
        )  # fmt: skip
    if from_meta:
        log.info("%s: teacher_p_yes of %d records read from their meta", path, from_meta)
    return records


def is_number(value) -> bool:
    """An int or float from JSON; booleans are ints to Python but not numbers here."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_texts(path) -> dict[str, str]:
    """{doc_id: text} from JSON lines (captions, ASR transcripts); one record per video."""
    texts: dict[str, str] = {}
    for number, record in read_jsonl(path, ("doc_id", "text")):
        for field in ("doc_id", "text"):
            if not isinstance(record[field], str):
                raise FormatError(path, number, f"{field} {record[field]!r} is not a string")
        docid = checked_id(path, number, "doc id", record["doc_id"])
        if docid in texts:
            raise FormatError(path, number, f"duplicate doc id {record['doc_id']!r}")
        texts[docid] = record["text"]
    return texts


def read_captions(path) -> dict[str, str]:
    """Captions of the videos: JSON lines {doc_id, text} (and the captioner's `meta`)."""
    return read_texts(path)


def read_asr(path) -> dict[str, str]:
    """Optional speech transcripts: JSON lines {doc_id, text}; no file, no transcripts."""
    if not path:
        return {}
    return read_texts(path)


# --- id lists and video manifests ---------------------------------------------------


def read_ids(path) -> list[str]:
    ids: dict[str, None] = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 1:
            raise FormatError(path, number, "expected one id per line")
        value = nfc(fields[0])
        if value in ids:
            raise FormatError(path, number, f"duplicate id {fields[0]!r}")
        ids[value] = None
    return list(ids)


def write_ids(path, ids: Iterable[str]) -> None:
    with _open_text(path, "wt") as f:
        f.writelines(f"{i}\n" for i in ids)


def read_manifest(path) -> dict[str, str]:
    """Video manifest: TSV doc_id<TAB>path."""
    manifest = {}
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise FormatError(path, number, "expected 'doc_id<TAB>video_path'")
        docid = checked_id(path, number, "video id", fields[0])
        if docid in manifest:
            raise FormatError(path, number, f"duplicate video id {fields[0]!r}")
        manifest[docid] = fields[1]
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
