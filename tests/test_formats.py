import gzip
import json
import logging

import pytest
import pytrec_eval

from rankvideo import formats
from rankvideo.formats import FormatError


def test_queries_round_trip_and_errors(tmp_path):
    path = tmp_path / "queries.tsv"
    queries = {"q1": "a red circle moving left", "q2": "person playing guitar"}
    formats.write_queries(path, queries)
    assert formats.read_queries(path) == queries
    path.write_text("q1\ta query\nq2 no tab here\n")
    with pytest.raises(FormatError, match=r"queries.tsv:2: expected"):
        formats.read_queries(path)
    path.write_text("q1\ta\n\nq1\tb\n")
    with pytest.raises(FormatError, match=r"queries.tsv:3: duplicate query id 'q1'"):
        formats.read_queries(path)


def test_qrels_round_trip_and_errors(tmp_path):
    path = tmp_path / "qrels.txt"
    qrels = {"q1": {"v1": 2, "v2": 0}, "q2": {"v1": 1}}
    formats.write_qrels(path, qrels)
    assert formats.read_qrels(path) == qrels
    path.write_text("q1 0 v1 1\nq1 0 v2 high\n")
    with pytest.raises(FormatError, match=r"qrels.txt:2: relevance 'high'"):
        formats.read_qrels(path)
    path.write_text("q1 0 v1\n")
    with pytest.raises(FormatError, match=r"qrels.txt:1: expected"):
        formats.read_qrels(path)


@pytest.mark.parametrize("name", ["run.json", "run.json.gz"])
def test_run_json_round_trip(tmp_path, name):
    run = {"q1": {"v1": 0.5, "v2": -1.25}, "q2": {"v3": 3.0}}
    formats.write_run_json(tmp_path / name, run)
    assert formats.read_run(tmp_path / name) == run


def test_run_json_rejects_bad_scores(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"q1": {"v1": "high"}}))
    with pytest.raises(FormatError, match=r"\(q1, v1\): score 'high' is not a number"):
        formats.read_run(path)
    path.write_text('{"q1": {"v1": 1.0,}}')
    with pytest.raises(FormatError, match=r"run.json:1: invalid JSON"):
        formats.read_run(path)
    with gzip.open(tmp_path / "run.json.gz", "wt") as f:
        f.write('{"q1": {"v1": NaN}}')
    with pytest.raises(FormatError, match="not finite"):
        formats.read_run(tmp_path / "run.json.gz")


def test_ranked_breaks_ties_like_trec_eval():
    # trec_eval: score descending, then doc id descending (byte order)
    docs = {"a": 1.0, "b": 1.0, "B": 1.0, "é": 1.0, "c": 2.0}
    assert formats.ranked(docs) == ["c", "é", "b", "a", "B"]
    # an explicit tie-break (a first-stage rank) comes before the doc id
    assert formats.ranked(docs, {"a": 0, "B": 1}) == ["c", "a", "B", "é", "b"]
    # trec_eval keeps scores in single precision: these two tie there
    assert formats.ranked({"x": 0.123456789, "y": 0.123456788}) == ["y", "x"]


def test_invert_run_cuts_in_trec_eval_order():
    run = {"q1": {"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.5}}
    assert formats.invert_run(run, depth=2) == {"b": ["q1"], "c": ["q1"]}


def test_trec_run_file_reads_back_in_its_written_order(tmp_path):
    """trec_eval on the written file ranks every document where the rank column says."""
    docs = {"a": 1.0, "b": 1.0, "c": 2.0, "d": 0.123456789, "e": 0.123456788, "f": 1e-9}
    docs |= {"g": 0.5000002, "h": 0.5000001}  # distinct in single precision, not in 6 digits
    formats.write_trec_run(tmp_path / "x.run", {"q1": docs}, "sys")
    lines = [line.split() for line in (tmp_path / "x.run").read_text().splitlines()]
    read = formats.read_run(tmp_path / "x.run")
    assert read == {"q1": docs}  # scores keep every digit
    for doc, rank in ((f[2], int(f[3])) for f in lines):
        evaluator = pytrec_eval.RelevanceEvaluator({"q1": {doc: 1}}, {"recip_rank"})
        assert evaluator.evaluate(read)["q1"]["recip_rank"] == pytest.approx(1 / rank)


def test_trec_run_round_trip_orders_ties(tmp_path):
    path = tmp_path / "x.run"
    formats.write_trec_run(path, {"q1": {"b": 1.0, "a": 1.0, "c": 2.0}}, "sys")
    lines = path.read_text().splitlines()
    assert [line.split()[2] for line in lines] == ["c", "b", "a"]
    assert [line.split()[3] for line in lines] == ["1", "2", "3"]
    assert formats.read_run(path) == {"q1": {"a": 1.0, "b": 1.0, "c": 2.0}}
    path.write_text("q1 Q0 a 1 0.5 sys\nq1 Q0 b 2 x sys\n")
    with pytest.raises(FormatError, match=r"x.run:2: score 'x'"):
        formats.read_run(path)


def test_candidates_and_invert_run(tmp_path):
    run = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"b": 5.0, "c": 4.0}}
    candidates = formats.invert_run(run, depth=2)
    assert candidates == {"a": ["q1"], "b": ["q1", "q2"], "c": ["q2"]}
    formats.write_candidates(tmp_path / "c.json", candidates)
    assert formats.read_candidates(tmp_path / "c.json") == candidates
    (tmp_path / "bad.json").write_text(json.dumps({"a": "q1"}))
    with pytest.raises(FormatError, match="bad.json: video 'a': expected a list of query ids"):
        formats.read_candidates(tmp_path / "bad.json")


def test_jsonl_round_trip_and_errors(tmp_path):
    path = tmp_path / "x.jsonl"
    records = [{"query_id": "q1", "doc_id": "v1"}, {"query_id": "q2", "doc_id": "v2"}]
    assert formats.write_jsonl(path, records) == 2
    assert [r for _, r in formats.read_jsonl(path, ("query_id", "doc_id"))] == records
    path.write_text('{"query_id": "q1", "doc_id": "v1"}\n{"query_id": "q2"}\n')
    with pytest.raises(FormatError, match=r"x.jsonl:2: missing field\(s\) doc_id"):
        list(formats.read_jsonl(path, ("query_id", "doc_id")))
    path.write_text('{"query_id": "q1"}\n[1, 2]\n')
    with pytest.raises(FormatError, match=r"x.jsonl:2: expected a JSON object"):
        list(formats.read_jsonl(path))


def test_training_records_are_checked(tmp_path):
    good = {
        "query_id": "q1",
        "query": "a red circle",
        "doc_id": "v1",
        "videos": ["videos/v1.mp4"],
        "true_label": 1,
        "teacher_p_yes": 0.8,
        "evidence": {"caption": "A red circle.", "asr": ""},
    }
    path = tmp_path / "training_data.json"
    formats.write_jsonl(path, [good, {**good, "teacher_p_yes": 1.5}])
    with pytest.raises(FormatError, match=r"training_data.json:2: teacher_p_yes 1.5"):
        formats.read_training_records(path)
    formats.write_jsonl(path, [good, {**good, "true_label": 2}])
    with pytest.raises(FormatError, match=r"training_data.json:2: true_label 2"):
        formats.read_training_records(path)
    formats.write_jsonl(path, [good])
    assert formats.read_training_records(path) == [good]


def test_ids_and_manifest(tmp_path):
    formats.write_ids(tmp_path / "ids.txt", ["q1", "q2"])
    assert formats.read_ids(tmp_path / "ids.txt") == ["q1", "q2"]
    (tmp_path / "dup.txt").write_text("q1\nq2\nq1\n")
    with pytest.raises(FormatError, match=r"dup.txt:3: duplicate id 'q1'"):
        formats.read_ids(tmp_path / "dup.txt")
    formats.write_manifest(tmp_path / "videos.tsv", {"v1": "a/v1.mp4"})
    assert formats.read_manifest(tmp_path / "videos.tsv") == {"v1": "a/v1.mp4"}


def test_json_duplicate_keys_name_the_key_and_query(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"q1": {"v1": 1.0}, "q2": {"v1": 1.0, "v2": 0.5, "v1": 2.0}}')
    with pytest.raises(FormatError, match=r"run.json: duplicate doc id 'v1' in query 'q2'"):
        formats.read_run(path)
    path.write_text('{"v1": ["q1"], "v2": ["q1"], "v1": []}')
    with pytest.raises(FormatError, match=r"run.json: duplicate video id 'v1'"):
        formats.read_candidates(path)


def test_non_utf8_names_line_and_byte_offset(tmp_path):
    path = tmp_path / "queries.tsv"
    path.write_bytes(b"q1\ta\nq2\tb\xffc\n")
    with pytest.raises(
        FormatError, match=r"queries.tsv:2: not UTF-8 text: byte 0xff at byte offset 9"
    ):
        formats.read_queries(path)


# MultiVENT 2.0's queries: CSV with a header, quoted fields, any language
MULTIVENT_CSV = (
    "Query_id,query\n"
    '101,"Protestas en Santiago, Chile — 2019"\n'
    "102,Наводнение в Краснодаре\n"
    '103,"东京奥运会 ""开幕式"""\n'
    '104,"wildfire\nin   California\tsmoke"\n'
)
MULTIVENT_QUERIES = {
    "101": "Protestas en Santiago, Chile — 2019",
    "102": "Наводнение в Краснодаре",
    "103": '东京奥运会 "开幕式"',
    "104": "wildfire in California smoke",
}


@pytest.mark.parametrize("name", ["queries.csv", "queries.CSV", "queries.csv.gz"])
def test_queries_csv(tmp_path, name, caplog):
    path = tmp_path / name
    data = MULTIVENT_CSV.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with caplog.at_level(logging.INFO, logger="rankvideo.formats"):
        queries = formats.read_queries(path)
    assert queries == MULTIVENT_QUERIES
    assert "collapsed the whitespace of 1 query texts" in caplog.text
    # the normalised TSV holds every text as it was read
    formats.write_queries(tmp_path / "queries.tsv", queries)
    assert formats.read_queries(tmp_path / "queries.tsv") == queries


@pytest.mark.parametrize(
    "header", ["query_id,query", "QUERY_ID,Query", "query_id,query_text", " Query_id , query "]
)
def test_queries_csv_header_names_in_any_case(tmp_path, header):
    path = tmp_path / "queries.csv"
    path.write_text(f"{header}\n1,a query\n")
    assert formats.read_queries(path) == {"1": "a query"}


def test_queries_csv_columns_in_either_order(tmp_path):
    path = tmp_path / "queries.csv"
    path.write_text('query,Query_id\n"a query, with a comma",q7\n')
    assert formats.read_queries(path) == {"q7": "a query, with a comma"}


def test_queries_csv_errors_name_the_line_where_the_record_starts(tmp_path):
    path = tmp_path / "queries.csv"
    path.write_text('Query_id,query\n1,"two\nlines"\n1,again\n')
    with pytest.raises(FormatError, match=r"queries.csv:4: duplicate query id '1'"):
        formats.read_queries(path)
    path.write_text('Query_id,query\n1,fine\n2,"never closed\n3,more\n')
    with pytest.raises(FormatError, match=r"queries.csv:3: .*quote.*never closed"):
        formats.read_queries(path)


QRELS = {"101": {"7": 2, "1234": 0}, "q2": {"v1": 1}}


@pytest.mark.parametrize("name", ["qrels.jsonl", "qrels.jsonl.gz", "qrels.json", "qrels.JSONL"])
def test_qrels_json_lines(tmp_path, name):
    """Numeric ids are read as their decimal strings; 2.0 is the grade 2."""
    text = (
        '{"query_id": 101, "doc_id": 7, "relevance": 2}\n'
        "\n"
        '{"query_id": "101", "doc_id": "1234", "relevance": 0}\n'
        '{"doc_id": "v1", "relevance": 1.0, "query_id": "q2", "note": "other fields are left"}\n'
    )
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    qrels = formats.read_qrels(path)
    assert qrels == QRELS
    assert all(isinstance(g, int) for docs in qrels.values() for g in docs.values())
    formats.write_qrels(tmp_path / "qrels.txt", qrels)
    assert formats.read_qrels(tmp_path / "qrels.txt") == QRELS


def test_training_records_as_a_json_array_read_as_json_lines(tmp_path):
    """The release names its records training_data.json: JSON lines or one JSON array."""
    rows = [
        {"query_id": "q1", "query": "a red circle", "doc_id": "v1", "videos": ["a.mp4"],
         "true_label": 1, "teacher_p_yes": 0.9},
        {"query_id": "q1", "query": "a red circle", "doc_id": "v2", "videos": ["b.mp4"],
         "true_label": 0},
    ]  # fmt: skip
    formats.write_jsonl(tmp_path / "lines.json", rows)
    (tmp_path / "array.json").write_text("\ufeff" + json.dumps(rows, indent=1))
    assert formats.read_training_records(tmp_path / "array.json") == rows
    assert formats.read_training_records(tmp_path / "lines.json") == rows
    (tmp_path / "bad.json").write_text(json.dumps([rows[0], {**rows[1], "true_label": 2}]))
    with pytest.raises(formats.FormatError, match=r"bad.json: record 2: true_label 2"):
        formats.read_training_records(tmp_path / "bad.json")
    (tmp_path / "flat.json").write_text(json.dumps([rows[0], "not a record"]))
    with pytest.raises(formats.FormatError, match=r"flat.json: record 2: expected a JSON object"):
        formats.read_training_records(tmp_path / "flat.json")


def test_training_records_read_as_the_release_trains_on_them(tmp_path, caplog):
    """No true_label: the teacher_label (as the release's training); p_yes under meta."""
    base = {"query_id": "q1", "query": "a red circle", "videos": ["a.mp4"]}
    rows = [
        {**base, "doc_id": "v1", "teacher_label": 1, "meta": {"teacher_p_yes": 0.8}},
        {**base, "doc_id": "v2", "true_label": 0, "teacher_label": 1},
    ]
    formats.write_jsonl(tmp_path / "r.jsonl", rows)
    first, second = formats.read_training_records(tmp_path / "r.jsonl")
    assert first["true_label"] == 1 and first["teacher_p_yes"] == 0.8
    assert second["true_label"] == 0  # a true label is never replaced
    assert "1 records have no true_label; their teacher_label is used" in caplog.text
    formats.write_jsonl(tmp_path / "none.jsonl", [{**base, "doc_id": "v3"}])
    with pytest.raises(formats.FormatError, match=r"none.jsonl:1: missing field\(s\) true_label"):
        formats.read_training_records(tmp_path / "none.jsonl")
