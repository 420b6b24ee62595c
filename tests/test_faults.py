"""Bad inputs: every file the workflow reads, broken the ways real data breaks.

Each bad case writes one broken input into a fresh folder, makes the call that
meets it first, and checks what the user sees: the exception type and a message
that names the file (`path:line:` where there is a line) and the id or pair. A
failing call must leave the folder exactly as it was: nothing half-written,
nothing computed earlier lost. The accepted variants (a UTF-8 byte-order mark,
CRLF line ends, gzip, bucket folders of videos) must read exactly like the
plain files.
"""

from __future__ import annotations

import gzip
import importlib
import io
import json
import os
import re
import tarfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from rankvideo import formats
from rankvideo.evaluate import judged_queries, read_scores
from rankvideo.extract import extract, scan_videos, unpack
from rankvideo.formats import FormatError, read_asr, read_captions
from rankvideo.rerank import read_pairs
from rankvideo.training_data import synthesize

# --- writers ----------------------------------------------------------------------


def _put(path: Path, content: str | bytes) -> Path:
    """Write text (gzipped for a `.gz` name) or bytes as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
        content = gzip.compress(content, mtime=0) if path.suffix == ".gz" else content
    path.write_bytes(content)
    return path


def _lines(*records) -> str:
    """JSON lines; a str record is written as it is (for JSON that json.dumps cannot make)."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


RECORD = {
    "query_id": "q1",
    "query": "a red circle",
    "doc_id": "v1",
    "videos": ["videos/v1.mp4"],
    "true_label": 1,
    "teacher_p_yes": 0.8,
    "evidence": {"caption": "A red circle.", "asr": ""},
    "teacher_reasoning": "The caption shows a red circle.",
}
SCORE = {"query_id": "q1", "doc_id": "a", "logit_delta": 1.5, "p_yes": 0.8}
JUDGEMENT = {"query_id": "q1", "doc_id": "v1", "relevance": 2}


def _tar(path: Path, *members: tarfile.TarInfo | tuple[str, bytes], mode="w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return path


def _member(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def _archive_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i in range(20):
            payload = os.urandom(4096)  # incompressible, so a cut gzip is a cut tar
            info = tarfile.TarInfo(f"data/videos/v{i}.mp4")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _corrupt_gzip(data: bytes) -> bytes:
    packed = bytearray(gzip.compress(data, mtime=0))
    middle = len(packed) // 2
    packed[middle : middle + 64] = bytes(64)
    return bytes(packed)


# --- the bad cases ------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """`write(folder, request)` makes the bad input and returns the file the message must
    name; `call(file, folder)` meets it; `says` is a regex in which PATH stands for that
    file."""

    write: Callable[[Path, pytest.FixtureRequest], Path]
    call: Callable[[Path, Path], object]
    error: type[BaseException]
    says: str


def bad_file(name, filename, content, read, says, error=FormatError):
    """A case of one file handed to one reader."""
    return pytest.param(
        Bad(lambda folder, _: _put(folder / filename, content), lambda p, _: read(p), error, says),
        id=name,
    )


def _jsonl(path):
    return list(formats.read_jsonl(path))


def _scores(path):
    return read_scores(path, "logit_delta")


def _unpack(archive: Path, folder: Path):
    return unpack(archive, folder / "out")


def bad_archive(name, write, says, error=ValueError):
    """A case of one archive; the destination holds an earlier extraction that must survive."""

    def setup(folder, _):
        _put(folder / "out" / "data" / "earlier.txt", "extracted before\n")
        return write(folder / "data.tar.gz")

    return pytest.param(Bad(setup, _unpack, error, says), id=name)


# the user's own data, outside an archive: five real clips, three queries
CLIP_IDS = ("bigbuckbunny", "bikes", "carphone_distorted", "carphone_pristine", "odd_clip")


def _dataset(folder: Path, request) -> None:
    clips = request.getfixturevalue("real_videos")
    for clip in sorted(clips.iterdir()):
        (folder / "in" / "videos").mkdir(parents=True, exist_ok=True)
        (folder / "in" / "videos" / clip.name).symlink_to(clip)
    _put(folder / "in" / "queries.tsv", "u1\ta rabbit\nu2\tbikes\nu3\ta phone call\n")
    _put(folder / "in" / "qrels.txt", "u1 0 bigbuckbunny 1\nu2 0 bikes 2\nu3 0 odd_clip 1\n")
    _put(folder / "in" / "train.txt", "u3\n")
    _put(folder / "in" / "eval.txt", "u1\nu2\n")
    run = {
        "u1": {c: float(i) for i, c in enumerate(CLIP_IDS)},
        "u2": {"bikes": 1.0, "carphone_pristine": 0.5},
        "u3": {"odd_clip": 2.0, "bikes": 1.0},
    }
    _put(folder / "in" / "runs" / "ranking_mine.json", json.dumps(run))
    # an earlier extraction that a failed one must leave alone
    _put(folder / "data" / "queries.tsv", "u1\tfrom an earlier extraction\n")


def _extract(_, folder: Path, depth=10):
    inputs = folder / "in"
    return extract(
        folder / "data",
        ["mine"],
        depth=depth,
        videos=inputs / "videos",
        queries=inputs / "queries.tsv",
        qrels=inputs / "qrels.txt",
        first_stage_dir=inputs / "runs",
        train_queries=inputs / "train.txt",
        eval_queries=inputs / "eval.txt",
    )


def bad_dataset(name, change: Callable[[Path], Path], says, error=ValueError):
    """A case of extraction from the user's files after `change(inputs)` broke one of them."""

    def setup(folder, request):
        _dataset(folder, request)
        return change(folder / "in")

    return pytest.param(Bad(setup, _extract, error, says), id=name)


def _run_with(inputs: Path, doc: str) -> None:
    """Put `doc` into the top of the first stage of an eval query."""
    path = inputs / "runs" / "ranking_mine.json"
    run = json.loads(path.read_text())
    run["u1"][doc] = 99.0
    path.write_text(json.dumps(run))


def _bad_video(filename: str, content: Callable[[Path], bytes]):
    def change(inputs):
        clip = inputs / "videos" / "bikes.mp4"
        path = _put(inputs / "videos" / filename, content(clip.resolve()))
        _run_with(inputs, Path(filename).stem)
        return path

    return change


def _two_files_for_one_id(inputs):
    (inputs / "videos" / "sub").mkdir()
    (inputs / "videos" / "sub" / "bikes.mkv").symlink_to(inputs / "videos" / "bikes.mp4")
    return inputs / "videos" / "bikes.mp4"


def _one_id_in_two_buckets(inputs):
    """A video filed under its own bucket and, by mistake, under the next one too."""
    clip = (inputs / "videos" / "bikes.mp4").resolve()
    for bucket in ("000013", "000014"):
        (inputs / "videos" / bucket).mkdir()
        (inputs / "videos" / bucket / "1234.mp4").symlink_to(clip)
    return inputs / "videos" / "000013" / "1234.mp4"


def _videos_as_file(inputs):
    """`data.videos` naming a file instead of the folder."""
    clip = (inputs / "videos" / "bikes.mp4").resolve()
    for link in (inputs / "videos").iterdir():
        link.unlink()
    (inputs / "videos").rmdir()
    return _put(inputs / "videos", clip.read_bytes())


def _labels_twice(folder: Path, _) -> Path:
    """The inputs of the training-data step, with one teacher label given twice."""
    label = {"query_id": "q1", "doc_id": "v1", "teacher_p_yes": 0.9, "teacher_reasoning": ""}
    _put(folder / "queries.tsv", "q1\ta red circle\n")
    _put(folder / "qrels.txt", "q1 0 v1 1\n")
    _put(folder / "videos.tsv", "v1\tvideos/v1.mp4\n")
    _put(folder / "captions.jsonl", _lines({"doc_id": "v1", "text": "A red circle."}))
    _put(folder / "train.txt", "q1\n")
    return _put(folder / "labels.jsonl", _lines(label, {**label, "teacher_p_yes": 0.1}))


def _synthesize(labels: Path, folder: Path):
    names = ("captions.jsonl", "qrels.txt", "queries.tsv", "videos.tsv", "train.txt")
    return synthesize(labels, *(folder / n for n in names))


def _replace(relative: str, content: str | bytes):
    return lambda inputs: _put(inputs / relative, content)


INVALID_UTF8 = b"\xe9"
RUN_TEXT = json.dumps({f"q{i}": {f"v{j}": float(j) for j in range(50)} for i in range(50)}).encode()

BAD = [
    # queries: TSV query_id<TAB>query_text
    bad_file("queries-no-tab", "queries.tsv", "q1 a query\n", formats.read_queries,
             r"PATH:1: expected 'query_id<TAB>query_text'"),
    bad_file("queries-three-fields", "queries.tsv", "q1\ta\tb\n", formats.read_queries,
             r"PATH:1: expected"),
    bad_file("queries-empty-text", "queries.tsv", "q1\ta\nq2\t \n", formats.read_queries,
             r"PATH:2: expected"),
    bad_file("queries-duplicate-id", "queries.tsv", "q1\ta\n\nq1\tb\n", formats.read_queries,
             r"PATH:3: duplicate query id 'q1'"),
    bad_file("queries-empty-file", "queries.tsv", "\n\n", formats.read_queries,
             r"PATH: no queries"),
    bad_file("queries-latin1", "queries.tsv", b"q1\tcaf" + INVALID_UTF8 + b"\n",
             formats.read_queries, r"PATH:1: .*UTF-8.*byte offset 6"),
    bad_file("queries-gzip-corrupt", "queries.tsv.gz", _corrupt_gzip(RUN_TEXT),
             formats.read_queries, r"PATH: .*gzip"),
    bad_file("queries-id-with-space", "queries.tsv", "q1\ta\nq 2\tb\n", formats.read_queries,
             r"PATH:2: query id 'q 2' is empty or holds whitespace"),
    # qrels: TREC 'qid 0 docid rel'
    bad_file("qrels-three-fields", "qrels.txt", "q1 0 v1\n", formats.read_qrels,
             r"PATH:1: expected 'query_id 0 doc_id relevance'"),
    bad_file("qrels-relevance-word", "qrels.txt", "q1 0 v1 1\nq1 0 v2 high\n",
             formats.read_qrels, r"PATH:2: relevance 'high' is not an integer"),
    bad_file("qrels-relevance-float", "qrels.txt", "q1 0 v1 1.5\n", formats.read_qrels,
             r"PATH:1: relevance '1.5'"),
    bad_file("qrels-duplicate-pair", "qrels.txt", "q1 0 v1 1\nq1 0 v1 0\n", formats.read_qrels,
             r"PATH:2: duplicate judgement for \(q1, v1\)"),
    bad_file("qrels-empty-file", "qrels.txt", "", formats.read_qrels, r"PATH: no judgements"),
    bad_file("qrels-latin1", "qrels.txt", b"q1 0 v1 1\nq1 0 caf" + INVALID_UTF8 + b" 1\n",
             formats.read_qrels, r"PATH:2: .*UTF-8.*byte offset 18"),
    # queries: CSV 'Query_id,query' with a header (MultiVENT 2.0's)
    bad_file("queries-csv-no-header", "queries.csv", "1,a query\n2,another\n",
             formats.read_queries, r"PATH:1: expected the header 'Query_id,query'.*found '1,a q"),
    bad_file("queries-csv-wrong-header", "queries.csv", "id,text\n1,a\n", formats.read_queries,
             r"PATH:1: expected the header 'Query_id,query'"),
    bad_file("queries-csv-header-three-columns", "queries.csv", "Query_id,query,lang\n1,a,es\n",
             formats.read_queries, r"PATH:1: expected the header"),
    bad_file("queries-csv-unterminated-quote", "queries.csv",
             'Query_id,query\n1,a\n2,"open\n3,c\n', formats.read_queries,
             r"PATH:3: a quote opened in this record is never closed"),
    bad_file("queries-csv-stray-quote", "queries.csv", 'Query_id,query\n1,"a"b\n',
             formats.read_queries, r"PATH:2: invalid CSV"),
    bad_file("queries-csv-empty-text", "queries.csv", 'Query_id,query\n1,a\n2," \n "\n',
             formats.read_queries, r"PATH:3: query '2' has an empty text"),
    bad_file("queries-csv-empty-id", "queries.csv", "Query_id,query\n,a\n", formats.read_queries,
             r"PATH:2: query id '' is empty or holds whitespace"),
    bad_file("queries-csv-id-with-space", "queries.csv", 'Query_id,query\n"q 1",a\n',
             formats.read_queries, r"PATH:2: query id 'q 1' is empty or holds whitespace"),
    bad_file("queries-csv-duplicate-id", "queries.csv", "Query_id,query\n1,a\n\n1,b\n",
             formats.read_queries, r"PATH:4: duplicate query id '1'"),
    bad_file("queries-csv-three-columns", "queries.csv", "Query_id,query\n1,a, b\n",
             formats.read_queries, r"PATH:2: expected 2 fields \(Query_id,query\), found 3"),
    bad_file("queries-csv-one-column", "queries.csv", "Query_id,query\n1,a\n2\n",
             formats.read_queries, r"PATH:3: expected 2 fields \(Query_id,query\), found 1"),
    bad_file("queries-csv-header-only", "queries.csv", "Query_id,query\n", formats.read_queries,
             r"PATH: no queries"),
    bad_file("queries-csv-empty-file", "queries.csv", "", formats.read_queries,
             r"PATH: no queries"),
    bad_file("queries-csv-latin1", "queries.csv", b"Query_id,query\n1,caf" + INVALID_UTF8 + b"\n",
             formats.read_queries, r"PATH:2: .*UTF-8.*byte offset 20"),
    # qrels: JSON lines {query_id, doc_id, relevance} (MultiVENT 2.0's)
    bad_file("qrels-jsonl-missing-field", "qrels.jsonl", _lines(JUDGEMENT, {"query_id": "q1",
             "doc_id": "v2"}), formats.read_qrels, r"PATH:2: missing field\(s\) relevance"),
    bad_file("qrels-jsonl-relevance-float", "qrels.jsonl",
             _lines(JUDGEMENT, {**JUDGEMENT, "doc_id": "v2", "relevance": 1.5}),
             formats.read_qrels, r"PATH:2: relevance 1.5 is not an integer"),
    bad_file("qrels-jsonl-relevance-bool", "qrels.jsonl", _lines({**JUDGEMENT, "relevance": True}),
             formats.read_qrels, r"PATH:1: relevance True is not an integer"),
    bad_file("qrels-jsonl-relevance-string", "qrels.jsonl",
             _lines({**JUDGEMENT, "relevance": "1"}), formats.read_qrels,
             r"PATH:1: relevance '1' is not an integer"),
    bad_file("qrels-jsonl-relevance-nan", "qrels.jsonl",
             _lines(json.dumps(JUDGEMENT).replace("2}", "NaN}")), formats.read_qrels,
             r"PATH:1: relevance nan is not an integer"),
    bad_file("qrels-jsonl-duplicate-pair", "qrels.jsonl",
             _lines(JUDGEMENT, {**JUDGEMENT, "doc_id": "v2"}, {**JUDGEMENT, "relevance": 0}),
             formats.read_qrels, r"PATH:3: duplicate judgement for \(q1, v1\)"),
    bad_file("qrels-jsonl-duplicate-pair-number-and-string", "qrels.jsonl",
             _lines({**JUDGEMENT, "query_id": 7}, {**JUDGEMENT, "query_id": "7"}),
             formats.read_qrels, r"PATH:2: duplicate judgement for \(7, v1\)"),
    bad_file("qrels-jsonl-not-object", "qrels.jsonl", _lines(JUDGEMENT, ["q1", "v2", 1]),
             formats.read_qrels, r"PATH:2: expected a JSON object"),
    bad_file("qrels-jsonl-doc-id-float", "qrels.jsonl", _lines({**JUDGEMENT, "doc_id": 7.0}),
             formats.read_qrels, r"PATH:1: doc_id 7.0 is not a string or an integer"),
    bad_file("qrels-jsonl-query-id-bool", "qrels.jsonl", _lines({**JUDGEMENT, "query_id": True}),
             formats.read_qrels, r"PATH:1: query_id True is not a string or an integer"),
    bad_file("qrels-jsonl-doc-id-empty", "qrels.jsonl", _lines({**JUDGEMENT, "doc_id": " "}),
             formats.read_qrels, r"PATH:1: doc_id ' ' is empty or holds whitespace"),
    bad_file("qrels-jsonl-doc-id-with-space", "qrels.jsonl",
             _lines(JUDGEMENT, {**JUDGEMENT, "doc_id": "extra clip"}), formats.read_qrels,
             r"PATH:2: doc_id 'extra clip' is empty or holds whitespace"),
    bad_file("qrels-jsonl-invalid-json", "qrels.jsonl", _lines(JUDGEMENT, '{"query_id": "q1",'),
             formats.read_qrels, r"PATH:2: invalid JSON"),
    bad_file("qrels-json-trec-lines", "qrels.json", "q1 0 v1 1\n", formats.read_qrels,
             r"PATH:1: invalid JSON"),
    bad_file("qrels-jsonl-duplicate-key", "qrels.jsonl",
             _lines(json.dumps(JUDGEMENT)[:-1] + ', "relevance": 0}'), formats.read_qrels,
             r"PATH:1: duplicate key 'relevance'"),
    bad_file("qrels-jsonl-empty-file", "qrels.jsonl", "\n", formats.read_qrels,
             r"PATH: no judgements"),
    # first-stage runs: JSON {qid: {docid: score}}
    bad_file("run-json-trailing-comma", "run.json", '{"q1": {"v1": 1.0,}}', formats.read_run,
             r"PATH:1: invalid JSON"),
    bad_file("run-json-empty-file", "run.json", "", formats.read_run, r"PATH:1: invalid JSON"),
    bad_file("run-json-not-object", "run.json", "[1, 2]", formats.read_run,
             r"PATH: expected an object"),
    bad_file("run-json-docs-not-object", "run.json", '{"q1": ["v1"]}', formats.read_run,
             r"PATH: query 'q1': expected \{doc_id: score\}"),
    bad_file("run-json-score-string", "run.json", '{"q1": {"v1": "high"}}', formats.read_run,
             r"PATH: \(q1, v1\): score 'high' is not a number"),
    bad_file("run-json-score-null", "run.json", '{"q1": {"v1": null}}', formats.read_run,
             r"PATH: \(q1, v1\): score None is not a number"),
    bad_file("run-json-score-bool", "run.json", '{"q1": {"v1": true}}', formats.read_run,
             r"PATH: \(q1, v1\): score True is not a number"),
    bad_file("run-json-score-nan", "run.json", '{"q1": {"v1": NaN}}', formats.read_run,
             r"PATH: \(q1, v1\): score nan is not finite"),
    bad_file("run-json-score-infinity", "run.json", '{"q1": {"v1": -Infinity}}',
             formats.read_run, r"PATH: \(q1, v1\): score -inf is not finite"),
    bad_file("run-json-duplicate-doc", "run.json", '{"q1": {"v1": 1.0, "v1": 2.0}}',
             formats.read_run, r"PATH: duplicate doc id 'v1' in query 'q1'"),
    bad_file("run-json-duplicate-query", "run.json", '{"q1": {"v1": 1.0}, "q1": {"v2": 1.0}}',
             formats.read_run, r"PATH: duplicate query id 'q1'"),
    bad_file("run-json-query-without-docs", "run.json", '{"q1": {"v1": 1.0}, "q2": {}}',
             formats.read_run, r"PATH: query 'q2' has no documents"),
    bad_file("run-json-doc-id-with-space", "run.json",
             '{"q1": {\n "v1": 1.0,\n "extra clip": 0.5}}',
             formats.read_run, r"PATH:3: doc id 'extra clip' is empty or holds whitespace"),
    bad_file("run-json-query-id-with-tab", "run.json", '{"q1": {"v1": 1.0},\n"q\\t2": {"v1": 1}}',
             formats.read_run, r"PATH:2: query id 'q\\t2' is empty or holds whitespace"),
    bad_file("run-json-one-doc-in-nfc-and-nfd", "run.json",
             json.dumps({"q1": {"caf\u00e9": 1.0, "cafe\u0301": 0.5}}), formats.read_run,
             r"PATH: doc id 'cafe\\u0301' is there twice: once spelled 'caf\\xe9', the same in "
             r"Unicode NFC in query 'q1'"),
    bad_file("run-json-latin1", "run.json", b'{"q1":\n {"caf' + INVALID_UTF8 + b'": 1.0}}',
             formats.read_run, r"PATH:2: .*UTF-8.*byte offset 13"),
    bad_file("run-json-gz-not-gzip", "run.json.gz", b"not gzip at all", formats.read_run,
             r"PATH: .*gzip"),
    bad_file("run-json-gz-truncated", "run.json.gz", gzip.compress(RUN_TEXT)[:-12],
             formats.read_run, r"PATH: .*gzip"),
    bad_file("run-json-gz-corrupt", "run.json.gz", _corrupt_gzip(RUN_TEXT), formats.read_run,
             r"PATH: .*gzip"),
    # TREC runs: 'qid Q0 docid rank score tag'
    bad_file("trec-run-five-fields", "x.run", "q1 Q0 v1 1 0.5\n", formats.read_run,
             r"PATH:1: expected 'query_id Q0 doc_id rank score tag'"),
    bad_file("trec-run-score-word", "x.run", "q1 Q0 a 1 0.5 t\nq1 Q0 b 2 x t\n",
             formats.read_run, r"PATH:2: score 'x' is not a number"),
    bad_file("trec-run-score-nan", "x.run", "q1 Q0 a 1 nan t\n", formats.read_run,
             r"PATH:1: score 'nan' is not finite"),
    bad_file("trec-run-score-inf", "x.run", "q1 Q0 a 1 0.5 t\nq1 Q0 b 2 -inf t\n",
             formats.read_run, r"PATH:2: score '-inf' is not finite"),
    bad_file("trec-run-duplicate-pair", "x.run", "q1 Q0 a 1 0.5 t\nq1 Q0 a 2 0.4 t\n",
             formats.read_run, r"PATH:2: duplicate entry for \(q1, a\)"),
    bad_file("trec-run-latin1", "x.run", b"q1 Q0 a" + INVALID_UTF8 + b" 1 0.5 t\n",
             formats.read_run, r"PATH:1: .*UTF-8.*byte offset 7"),
    # candidate maps: JSON {video_id: [query_id, ...]}
    bad_file("candidates-not-object", "c.json", '["v1"]', formats.read_candidates,
             r"PATH: expected an object \{video_id: \[query_id, ...\]\}"),
    bad_file("candidates-value-not-list", "c.json", '{"v0": ["q1"], "v1": "q1"}',
             formats.read_candidates, r"PATH: video 'v1': expected a list of query ids"),
    bad_file("candidates-query-not-string", "c.json", '{"v1": ["q1", 3]}',
             formats.read_candidates, r"PATH: video 'v1': query id 3 is not a string"),
    bad_file("candidates-query-twice", "c.json", '{"v1": ["q1", "q2", "q1"]}',
             formats.read_candidates, r"PATH: video 'v1': query 'q1' is listed twice"),
    bad_file("candidates-duplicate-video", "c.json", '{"v1": ["q1"], "v1": ["q2"]}',
             formats.read_candidates, r"PATH: duplicate video id 'v1'"),
    bad_file("candidates-invalid-json", "c.json", '{"v1": ["q1"]\n', formats.read_candidates,
             r"PATH:2: invalid JSON"),
    # JSON lines, as every step writes them
    bad_file("jsonl-invalid-json", "x.jsonl", '{"a": 1}\n{"a": \n', _jsonl,
             r"PATH:2: invalid JSON"),
    bad_file("jsonl-not-object", "x.jsonl", '{"a": 1}\n[1, 2]\n', _jsonl,
             r"PATH:2: expected a JSON object"),
    bad_file("jsonl-duplicate-key", "x.jsonl", '{"a": 1}\n{"a": 1, "b": 2, "a": 3}\n', _jsonl,
             r"PATH:2: duplicate key 'a'"),
    bad_file("jsonl-duplicate-nested-key", "x.jsonl", '{"e": {"x": 1, "x": 2}}\n', _jsonl,
             r"PATH:1: duplicate key 'x' in 'e'"),
    bad_file("jsonl-latin1", "x.jsonl", b'{"a": 1}\n{"a": "caf' + INVALID_UTF8 + b'"}\n', _jsonl,
             r"PATH:2: .*UTF-8.*byte offset 19"),
    bad_file("jsonl-gz-corrupt", "x.jsonl.gz", b"\x1f\x8b\x08\x00" + bytes(40), _jsonl,
             r"PATH: .*gzip"),
    # training records of the release format
    bad_file("training-doc-id-with-space", "t.jsonl", _lines({**RECORD, "doc_id": "extra clip"}),
             formats.read_training_records,
             r"PATH:1: doc_id 'extra clip' is empty or holds whitespace"),
    bad_file("training-query-id-number", "t.jsonl", _lines({**RECORD, "query_id": 7}),
             formats.read_training_records, r"PATH:1: query_id 7 is not a string"),
    bad_file("training-true-label-2", "t.jsonl", _lines(RECORD, {**RECORD, "true_label": 2}),
             formats.read_training_records, r"PATH:2: true_label 2 is not 0 or 1"),
    bad_file("training-true-label-bool", "t.jsonl", _lines({**RECORD, "true_label": True}),
             formats.read_training_records, r"PATH:1: true_label True is not 0 or 1"),
    bad_file("training-p-yes-above-1", "t.jsonl", _lines({**RECORD, "teacher_p_yes": 1.5}),
             formats.read_training_records, r"PATH:1: teacher_p_yes 1.5 is not a probability"),
    bad_file("training-p-yes-string", "t.jsonl", _lines({**RECORD, "teacher_p_yes": "0.5"}),
             formats.read_training_records, r"PATH:1: teacher_p_yes '0.5'"),
    bad_file("training-p-yes-bool", "t.jsonl", _lines({**RECORD, "teacher_p_yes": True}),
             formats.read_training_records, r"PATH:1: teacher_p_yes True"),
    bad_file("training-p-yes-nan", "t.jsonl", _lines(json.dumps(RECORD).replace("0.8", "NaN")),
             formats.read_training_records, r"PATH:1: teacher_p_yes nan"),
    bad_file("training-videos-empty", "t.jsonl", _lines({**RECORD, "videos": []}),
             formats.read_training_records, r"PATH:1: videos must be a non-empty list"),
    bad_file("training-videos-string", "t.jsonl", _lines({**RECORD, "videos": "v1.mp4"}),
             formats.read_training_records, r"PATH:1: videos must be a non-empty list"),
    bad_file("training-videos-not-paths", "t.jsonl", _lines({**RECORD, "videos": [1]}),
             formats.read_training_records, r"PATH:1: videos must be a non-empty list"),
    bad_file("training-missing-doc-id", "t.jsonl",
             _lines(RECORD, {k: v for k, v in RECORD.items() if k != "doc_id"}),
             formats.read_training_records, r"PATH:2: missing field\(s\) doc_id"),
    bad_file("training-duplicate-key", "t.jsonl",
             _lines(json.dumps(RECORD)[:-1] + ', "true_label": 0}'),
             formats.read_training_records, r"PATH:1: duplicate key 'true_label'"),
    # captions and ASR: JSON lines {doc_id, text}
    bad_file("captions-doc-id-with-space", "c.jsonl",
             _lines({"doc_id": "v1", "text": "a"}, {"doc_id": "extra clip", "text": "b"}),
             read_captions, r"PATH:2: doc id 'extra clip' is empty or holds whitespace"),
    bad_file("asr-empty-doc-id", "a.jsonl", _lines({"doc_id": "", "text": "a"}), read_asr,
             r"PATH:1: doc id '' is empty or holds whitespace"),
    bad_file("captions-missing-text", "c.jsonl", _lines({"doc_id": "v1"}), read_captions,
             r"PATH:1: missing field\(s\) text"),
    bad_file("captions-duplicate-video", "c.jsonl",
             _lines({"doc_id": "v1", "text": "a"}, {"doc_id": "v1", "text": "b"}), read_captions,
             r"PATH:2: duplicate doc id 'v1'"),
    bad_file("captions-text-null", "c.jsonl", _lines({"doc_id": "v1", "text": None}),
             read_captions, r"PATH:1: text None is not a string"),
    bad_file("captions-doc-id-number", "c.jsonl", _lines({"doc_id": 17, "text": "a"}),
             read_captions, r"PATH:1: doc_id 17 is not a string"),
    bad_file("captions-latin1", "c.jsonl", b'{"doc_id": "v1", "text": "caf' + INVALID_UTF8
             + b'"}\n', read_captions, r"PATH:1: .*UTF-8.*byte offset 29"),
    bad_file("asr-missing-text", "asr.jsonl", _lines({"doc_id": "v1", "transcript": "a"}),
             read_asr, r"PATH:1: missing field\(s\) text"),
    bad_file("asr-duplicate-video", "asr.jsonl",
             _lines({"doc_id": "v1", "text": "a"}, {"doc_id": "v1", "text": "a"}), read_asr,
             r"PATH:2: duplicate doc id 'v1'"),
    bad_file("asr-text-list", "asr.jsonl", _lines({"doc_id": "v1", "text": ["a", "b"]}),
             read_asr, r"PATH:1: text \['a', 'b'\] is not a string"),
    bad_file("asr-duplicate-key", "asr.jsonl", '{"doc_id": "v1", "text": "a", "text": "b"}\n',
             read_asr, r"PATH:1: duplicate key 'text'"),
    pytest.param(Bad(_labels_twice, _synthesize, FormatError,
                     r"PATH:2: duplicate label for \(q1, v1\)"),
                 id="teacher-labels-duplicate-pair"),
    # candidate maps: JSON {video_id: [query_id, ...]}
    bad_file("candidates-video-id-with-space", "c.json", '{"v1": ["q1"],\n "extra clip": ["q1"]}',
             formats.read_candidates, r"PATH:2: video id 'extra clip' is empty or holds white"),
    bad_file("candidates-query-id-with-space", "c.json", '{"v1": ["q1", "q 2"]}',
             formats.read_candidates, r"PATH:1: query id 'q 2' is empty or holds whitespace"),
    bad_file("candidates-empty-map", "c.json", "{}\n", lambda p: read_pairs([p]),
             r"PATH: no candidate pairs: nothing to rerank"),
    # id lists and splits
    bad_file("ids-duplicate", "ids.txt", "q1\nq2\nq1\n", formats.read_ids,
             r"PATH:3: duplicate id 'q1'"),
    bad_file("ids-two-on-a-line", "ids.txt", "q1\nq2 q3\n", formats.read_ids,
             r"PATH:2: expected one id per line"),
    bad_file("ids-latin1", "ids.txt", b"q1\nq" + INVALID_UTF8 + b"\n", formats.read_ids,
             r"PATH:2: .*UTF-8.*byte offset 4"),
    # video manifests: TSV doc_id<TAB>path
    bad_file("manifest-no-tab", "videos.tsv", "v1 a/v1.mp4\n", formats.read_manifest,
             r"PATH:1: expected 'doc_id<TAB>video_path'"),
    bad_file("manifest-empty-path", "videos.tsv", "v1\ta/v1.mp4\nv2\t\n", formats.read_manifest,
             r"PATH:2: expected 'doc_id<TAB>video_path'"),
    bad_file("manifest-duplicate-id", "videos.tsv", "v1\ta.mp4\nv1\tb.mp4\n",
             formats.read_manifest, r"PATH:2: duplicate video id 'v1'"),
    bad_file("manifest-id-with-space", "videos.tsv", "v1\ta.mp4\nextra clip\tb.mp4\n",
             formats.read_manifest, r"PATH:2: video id 'extra clip' is empty or holds whitespace"),
    bad_file("manifest-latin1", "videos.tsv", b"v1\tcaf" + INVALID_UTF8 + b".mp4\n",
             formats.read_manifest, r"PATH:1: .*UTF-8.*byte offset 6"),
    # reranked scores: JSON lines per pair
    bad_file("scores-nan", "s.jsonl", _lines(SCORE, json.dumps(SCORE).replace("1.5", "NaN")),
             _scores, r"PATH:2: logit_delta nan is not a finite number"),
    bad_file("scores-infinity", "s.jsonl", _lines(json.dumps(SCORE).replace("1.5", "Infinity")),
             _scores, r"PATH:1: logit_delta inf is not a finite number"),
    bad_file("scores-minus-infinity", "s.jsonl",
             _lines(json.dumps(SCORE).replace("1.5", "-Infinity")), _scores,
             r"PATH:1: logit_delta -inf is not a finite number"),
    bad_file("scores-bool", "s.jsonl", _lines({**SCORE, "logit_delta": False}), _scores,
             r"PATH:1: logit_delta False is not a number"),
    bad_file("scores-string", "s.jsonl", _lines({**SCORE, "logit_delta": "1.5"}), _scores,
             r"PATH:1: logit_delta '1.5' is not a number"),
    bad_file("scores-null", "s.jsonl", _lines({**SCORE, "logit_delta": None}), _scores,
             r"PATH:1: logit_delta None is not a number"),
    bad_file("scores-duplicate-pair", "s.jsonl", _lines(SCORE, {**SCORE, "logit_delta": 0.0}),
             _scores, r"PATH:2: duplicate score for \(q1, a\)"),
    bad_file("scores-missing-field", "s.jsonl", _lines({"query_id": "q1", "doc_id": "a"}),
             _scores, r"PATH:1: missing field\(s\) logit_delta"),
    bad_file("scores-query-id-number", "s.jsonl", _lines({**SCORE, "query_id": 1}), _scores,
             r"PATH:1: query_id 1 is not a string"),
    bad_file("scores-duplicate-key", "s.jsonl",
             _lines(json.dumps(SCORE)[:-1] + ', "logit_delta": -3.0}'), _scores,
             r"PATH:1: duplicate key 'logit_delta'"),
    # archives
    bad_archive("archive-path-traversal",
                lambda p: _tar(p, ("data/ok.txt", b"ok"), ("../evil.txt", b"x")),
                r"PATH: member '../evil.txt' escapes"),
    bad_archive("archive-absolute-path", lambda p: _tar(p, ("/tmp/evil.txt", b"x")),
                r"PATH: member '/tmp/evil.txt' escapes"),
    bad_archive("archive-symlink-out",
                lambda p: _tar(p, _member("data/link", tarfile.SYMTYPE, "../../etc/passwd")),
                r"PATH: link 'data/link' -> '../../etc/passwd' points out"),
    bad_archive("archive-symlink-absolute",
                lambda p: _tar(p, _member("data/link", tarfile.SYMTYPE, "/etc/passwd")),
                r"PATH: link 'data/link' -> '/etc/passwd' points out"),
    bad_archive("archive-hardlink-out",
                lambda p: _tar(p, _member("data/hard", tarfile.LNKTYPE, "../outside.txt")),
                r"PATH: link 'data/hard' -> '../outside.txt' points out"),
    bad_archive("archive-device-file", lambda p: _tar(p, _member("data/dev", tarfile.CHRTYPE)),
                r"PATH: member 'data/dev' is not a file or folder"),
    bad_archive("archive-fifo", lambda p: _tar(p, _member("data/pipe", tarfile.FIFOTYPE)),
                r"PATH: member 'data/pipe' is not a file or folder"),
    bad_archive("archive-corrupt-gzip", lambda p: _put(p, _corrupt_gzip(_archive_bytes())),
                r"PATH: cannot read the archive"),
    bad_archive("archive-truncated-gzip",
                lambda p: _put(p, gzip.compress(_archive_bytes())[:50_000]),
                r"PATH: cannot read the archive"),
    bad_archive("archive-truncated-tar", lambda p: _put(p, _archive_bytes()[:30_000]),
                r"PATH: cannot read the archive"),
    bad_archive("archive-not-a-tar", lambda p: _put(p, b"just text, not an archive\n" * 40),
                r"PATH: cannot read the archive"),
    bad_archive("archive-empty-file", lambda p: _put(p, b""), r"PATH: cannot read the archive"),
    # extraction of the user's files: splits, runs, videos
    bad_dataset("split-unknown-query", _replace("train.txt", "u3\nu9\n"),
                r"PATH: 1 train query ids not in the queries file.*u9"),
    bad_dataset("splits-overlap", _replace("eval.txt", "u1\nu3\n"),
                r"PATH.*1 queries are in both splits.*u3"),
    bad_dataset("split-file-missing", lambda i: (i / "eval.txt").unlink() or i / "eval.txt",
                r"eval query ids not found: PATH", FileNotFoundError),
    bad_dataset("run-no-queries", _replace("runs/ranking_mine.json", "{}"),
                r"PATH: no queries", FormatError),
    bad_dataset("run-unknown-video", lambda i: _run_with(i, "no_such_clip") or i / "runs"
                / "ranking_mine.json", r"PATH: 1 retrieved videos have no file.*no_such_clip"),
    bad_dataset("run-unknown-query", _replace("runs/ranking_mine.json", '{"u9": {"bikes": 1}}'),
                r"PATH: 1 query ids not in the queries file.*u9"),
    bad_dataset("qrels-unknown-query", _replace("qrels.txt", "u1 0 bikes 1\nu8 0 bikes 1\n"),
                r"PATH: 1 query ids not in the queries file.*u8"),
    bad_dataset("video-zero-bytes", _bad_video("empty.mp4", lambda _: b""),
                r"1 of \d+ videos .*\n.*PATH: "),
    bad_dataset("video-truncated", _bad_video("cut.mp4", lambda c: c.read_bytes()[:100_000]),
                r"1 of \d+ videos .*\n.*PATH: "),
    bad_dataset("video-header-only", _bad_video("head.mp4", lambda c: c.read_bytes()[:2000]),
                r"1 of \d+ videos .*\n.*PATH: "),
    bad_dataset("video-text-file", _bad_video("notes.mp4", lambda _: b"not a video\n" * 10),
                r"1 of \d+ videos .*\n.*PATH: "),
    bad_dataset("video-name-with-space", _bad_video("extra clip.mp4", lambda c: c.read_bytes()),
                r"1 video file names hold whitespace, .*rename them: PATH$"),
    bad_dataset("videos-folder-is-a-file", _videos_as_file,
                r"PATH: not a folder of videos \(a file\)", NotADirectoryError),
    bad_dataset("qrels-ids-with-suffix",
                _replace("qrels.txt", "u1 0 bigbuckbunny.mp4 1\nu2 0 bikes.mp4 2\nu3 0 odd_clip 1"),
                r"PATH: 1 of 3 judged videos \(33%\) have a file.*e.g. \['bigbuckbunny.mp4', "
                r"'bikes.mp4'\]; 2 of them differ from a video id by a file suffix the video ids "
                r"do not carry \(e.g. 'bigbuckbunny.mp4' and the video 'bigbuckbunny'\)"),
    bad_dataset("qrels-ids-in-other-case",
                _replace("qrels.txt", "u1 0 BigBuckBunny 1\nu2 0 BIKES 2\nu3 0 odd_clip 1\n"),
                r"PATH: 1 of 3 judged videos \(33%\) have a file.*2 of them differ from a video id "
                r"by letter case \(e.g. 'BIKES' and the video 'bikes'\)"),
    bad_dataset("run-ids-with-suffix", lambda i: _run_with(i, "bikes.mp4") or i / "runs"
                / "ranking_mine.json", r"PATH: 1 retrieved videos have no file.*'bikes.mp4'.*"
                r"1 of them differ from a video id by a file suffix"),
    bad_dataset("run-without-eval-queries",
                _replace("runs/ranking_mine.json", '{"u3": {"odd_clip": 1.0}}'),
                r"mine: none of the 2 eval queries has first-stage results"),
    bad_dataset("video-two-files-one-id", _two_files_for_one_id,
                r"two videos share the id 'bikes': PATH, .*sub/bikes.mkv"),
    bad_dataset("video-one-id-in-two-buckets", _one_id_in_two_buckets,
                r"two videos share the id '1234': PATH, .*/000014/1234.mp4"),
]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, object]:
    """Every entry under `folder` with its size and time (files) or target (links)."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            entries[str(path)] = os.readlink(path)
        elif path.is_dir():
            entries[str(path)] = "folder"
        else:
            entries[str(path)] = (info.st_size, info.st_mtime_ns)
    return entries


@pytest.mark.parametrize("bad", BAD)
def test_bad_input(bad: Bad, tmp_path, request):
    path = bad.write(tmp_path, request)
    before = _snapshot(tmp_path)
    with pytest.raises(bad.error) as caught:
        bad.call(path, tmp_path)
    says = bad.says.replace("PATH", re.escape(str(path)))
    assert re.search(says, str(caught.value)), f"{caught.value!s} does not match {says}"
    assert _snapshot(tmp_path) == before  # nothing written, nothing lost


def test_every_broken_clip_is_reported_at_once(tmp_path, request):
    _dataset(tmp_path, request)
    inputs = tmp_path / "in"
    broken = [_bad_video(f"broken{i}.mp4", lambda _: b"")(inputs) for i in range(25)]
    with pytest.raises(ValueError) as caught:
        _extract(None, tmp_path, depth=50)
    message = str(caught.value)
    assert message.startswith("25 of 30 videos")
    assert sum(str(path) in message for path in broken) == 20  # the first 20, named
    assert not (tmp_path / "data" / "videos.tsv").exists()


def test_unreferenced_broken_clips_are_not_opened(tmp_path, request):
    _dataset(tmp_path, request)
    _put(tmp_path / "in" / "videos" / "never_retrieved.mp4", b"")
    counts = _extract(None, tmp_path)
    assert counts["videos"] == 6


# --- accepted variants --------------------------------------------------------------


def _bom(text: bytes) -> bytes:
    return b"\xef\xbb\xbf" + text


def _crlf(text: bytes) -> bytes:
    return text.replace(b"\n", b"\r\n")


VARIANTS = {
    "bom": _bom,
    "crlf": _crlf,
    "bom-crlf": lambda text: _bom(_crlf(text)),
    "gzip-bom-crlf": lambda text: gzip.compress(_bom(_crlf(text)), mtime=0),
}

PLAIN = [
    ("queries", "queries.tsv", "q1\ta red circle\nq2\tpeople on bikes\n", formats.read_queries),
    ("qrels", "qrels.txt", "q1 0 v1 2\nq1 0 v2 0\nq2 0 v1 1\n", formats.read_qrels),
    ("queries-csv", "queries.csv",
     'Query_id,query\n101,"Protestas en Santiago, Chile — 2019"\n102,"Наводнение\nв  Краснодаре"\n',
     formats.read_queries),
    ("qrels-jsonl", "qrels.jsonl",
     _lines(JUDGEMENT, {"query_id": 101, "doc_id": 1234, "relevance": 0}), formats.read_qrels),
    ("run-json", "run.json", json.dumps({"q1": {"v1": 1.5, "v2": -1}, "q2": {"v1": 0}}, indent=1),
     formats.read_run),
    ("run-trec", "x.run", "q1 Q0 v1 1 1.5 t\nq1 Q0 v2 2 -1 t\nq2 Q0 v1 1 0 t\n",
     formats.read_run),
    ("candidates", "c.json", json.dumps({"v1": ["q1", "q2"], "v2": ["q1"]}, indent=1),
     formats.read_candidates),
    ("ids", "ids.txt", "q1\nq2\n", formats.read_ids),
    ("manifest", "videos.tsv", "v1\tvideos/v1.mp4\nv2\tvideos/00001/v2.mkv\n",
     formats.read_manifest),
    ("jsonl", "x.jsonl", _lines({"a": 1}, {"a": "é"}), _jsonl),
    ("training-records", "t.jsonl", _lines(RECORD, {**RECORD, "doc_id": "v2", "true_label": 0}),
     formats.read_training_records),
    ("captions", "c.jsonl", _lines({"doc_id": "v1", "text": "A red circle."}), read_captions),
    ("asr", "asr.jsonl", _lines({"doc_id": "v1", "text": "hello"}), read_asr),
    ("scores", "s.jsonl", _lines(SCORE, {**SCORE, "doc_id": "b", "logit_delta": -2}), _scores),
]  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(
    ("filename", "text", "read"), [p[1:] for p in PLAIN], ids=[p[0] for p in PLAIN]
)
def test_accepted_variant(tmp_path, filename, text, read, variant):
    plain = read(_put(tmp_path / "plain" / filename, text))
    assert plain
    name = filename + ".gz" if variant.startswith("gzip") else filename
    changed = tmp_path / variant / name
    changed.parent.mkdir()
    changed.write_bytes(VARIANTS[variant](text.encode()))
    assert read(changed) == plain


def test_accepted_bucket_folders(tmp_path, request):
    """MultiVENT 2.0 keeps videos in folders of 100: {id // 100 + 1:06d}/{id}.mp4."""
    _dataset(tmp_path, request)
    videos = tmp_path / "in" / "videos"
    clip = (videos / "bikes.mp4").resolve()
    for doc in (17, 150):
        _put(videos / f"{doc // 100 + 1:06d}" / f"{doc}.mp4", clip.read_bytes())
        _run_with(tmp_path / "in", str(doc))
    manifest = scan_videos(videos)
    assert manifest["150"] == str(videos / "000002" / "150.mp4")
    counts = _extract(None, tmp_path)
    assert counts["videos"] == 7
    assert formats.read_manifest(tmp_path / "data" / "videos.tsv")["17"].endswith("000001/17.mp4")


def test_linked_bucket_folders_are_followed_once(tmp_path, request):
    """A bucket folder that is a link (to another disk) is scanned; a link back up the
    tree is not a loop."""
    _dataset(tmp_path, request)
    videos = tmp_path / "in" / "videos"
    elsewhere = tmp_path / "other_disk" / "000002"
    _put(elsewhere / "150.mp4", (videos / "bikes.mp4").resolve().read_bytes())
    (videos / "000002").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "back_up").symlink_to(videos, target_is_directory=True)
    manifest = scan_videos(videos)
    assert manifest["150"] == str(videos / "000002" / "150.mp4")
    assert len(manifest) == 6  # five clips and 150, each once
    _run_with(tmp_path / "in", "150")
    assert _extract(None, tmp_path)["videos"] == 6


@pytest.mark.parametrize("files_in", ["NFD", "NFC"])
def test_ids_match_in_unicode_nfc(tmp_path, request, files_in):
    """A file name written in NFD (as macOS writes them) is the id typed in NFC, and the
    other way round."""
    _dataset(tmp_path, request)
    inputs = tmp_path / "in"
    spelled = {form: unicodedata.normalize(form, "café_olé") for form in ("NFC", "NFD")}
    ids_in = "NFC" if files_in == "NFD" else "NFD"
    clip = (inputs / "videos" / "bikes.mp4").resolve()
    _put(inputs / "videos" / f"{spelled[files_in]}.mp4", clip.read_bytes())
    _run_with(inputs, spelled[ids_in])
    _put(inputs / "qrels.txt", f"u1 0 {spelled[ids_in]} 1\nu2 0 bikes 2\nu3 0 odd_clip 1\n")
    assert _extract(None, tmp_path)["videos"] == 6
    manifest = formats.read_manifest(tmp_path / "data" / "videos.tsv")
    assert manifest[spelled["NFC"]].endswith(f"{spelled[files_in]}.mp4")
    assert spelled["NFC"] in formats.read_qrels(tmp_path / "data" / "qrels.txt")["u1"]


def test_judged_videos_without_a_file_are_counted(tmp_path, request, caplog):
    """Above half of the judged videos found, extraction goes on and names the others."""
    _dataset(tmp_path, request)
    _put(tmp_path / "in" / "qrels.txt", "u1 0 bigbuckbunny 1\nu2 0 bikes 2\nu3 0 gone 1\n")
    _extract(None, tmp_path)
    assert "qrels.txt: 2 of 3 judged videos (67%) have a file in the video folder; " in caplog.text
    assert "without a file, e.g. ['gone']" in caplog.text


def test_trec_run_with_an_id_holding_whitespace_is_not_written(tmp_path):
    with pytest.raises(ValueError, match=r"x.run: cannot write doc id 'extra clip'"):
        formats.write_trec_run(tmp_path / "x.run", {"q1": {"extra clip": 1.0}}, "t")


def test_unjudged_eval_queries_are_named(tmp_path, caplog):
    qrels = _put(tmp_path / "qrels.txt", "q1 0 v1 1\n")
    ids = _put(tmp_path / "eval.txt", "q1\nq7\nq9\n")
    assert list(judged_queries(qrels, ids)) == ["q1"]
    assert f"{ids}: 2 of 3 evaluation queries have no judgements in {qrels}" in caplog.text
    assert "not evaluated: q7, q9" in caplog.text


OPTION_CASES = [
    ("evaluate", ["--depth", "-1"], "--depth: -1 is not an integer >= 1"),
    ("evaluate", ["--depth", "0"], "--depth: 0 is not an integer >= 1"),
    ("evaluate", ["--depth", "ten"], "--depth: 'ten' is not an integer"),
    ("rerank", ["--batch-size", "0"], "--batch-size: 0 is not an integer >= 1"),
    ("rerank", ["--fps", "0"], "--fps: 0.0 is not a number > 0"),
    ("rerank", ["--fps", "nan"], "--fps: nan is not a number > 0"),
    ("rerank", ["--max-frames", "0"], "--max-frames: 0 is not an integer >= 2"),
    ("rerank", ["--max-pixels", "-5"], "--max-pixels: -5 is not an integer >= 1"),
]
REQUIRED = {
    "evaluate": ["--pred-dir", "p", "--first-stage", "f.json", "--qrels", "q.txt"],
    "rerank": ["--model", "m", "--video2queries", "c.json", "--query-mapping", "q.tsv"]
    + ["--video-dir", "v", "--output-dir", "o"],
}


@pytest.mark.parametrize(("command", "given", "says"), OPTION_CASES)
def test_options_are_checked_as_the_schema_checks_them(command, given, says, capsys):
    """The command lines refuse what config.schema.yaml refuses, naming the option,
    before reading a file or loading a model."""
    main = importlib.import_module(f"rankvideo.{command}").main
    with pytest.raises(SystemExit) as caught:
        main([*REQUIRED[command], *given])
    assert caught.value.code == 2
    assert f"argument {says}" in capsys.readouterr().err


def test_training_record_ids_are_read_in_nfc(tmp_path):
    """A record written with an NFD id joins the NFC id every other reader holds."""
    import unicodedata

    nfd = unicodedata.normalize("NFD", "café")
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({**RECORD, "doc_id": nfd, "query_id": nfd}) + "\n")
    (record,) = formats.read_training_records(path)
    assert record["doc_id"] == record["query_id"] == unicodedata.normalize("NFC", "café")
