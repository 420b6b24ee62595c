"""A system given as a file of scores: read strictly against the candidate map, and
ranked exactly as a model's merged scores are."""

import json
import logging

import pytest

from rankvideo import formats
from rankvideo.pairs import merge_scores
from rankvideo.score_files import import_scores, read_score_file

CANDIDATES = {"v1": ["q1", "q2"], "v2": ["q1"], "v3": ["q2"]}
FIRST_STAGE = {"q1": {"v1": 3.0, "v2": 2.0, "v9": 1.0}, "q2": {"v3": 5.0, "v1": 4.0}}
SCORES = {("q1", "v1"): -1.5, ("q1", "v2"): 2.25, ("q2", "v1"): 0.5, ("q2", "v3"): 0.5}


@pytest.fixture
def maps(tmp_path):
    formats.write_candidates(tmp_path / "cand.json", CANDIDATES)
    formats.write_run_json(tmp_path / "first.json", FIRST_STAGE)
    return tmp_path / "cand.json", tmp_path / "first.json"


def write_trec(path, scores, extra_lines=()):
    lines = [f"{q} Q0 {d} {i} {s} elsewhere" for i, ((q, d), s) in enumerate(scores.items(), 1)]
    path.write_text("\n".join([*lines, *extra_lines]) + "\n")
    return path


def write_jsonl(path, scores):
    records = [{"query_id": q, "doc_id": d, "logit_delta": s} for (q, d), s in scores.items()]
    formats.write_jsonl(path, records)
    return path


def test_the_three_formats_read_the_same_scores(tmp_path):
    trec = read_score_file(write_trec(tmp_path / "s.run", SCORES))
    jsonl = read_score_file(write_jsonl(tmp_path / "s.jsonl", SCORES))
    run = {}
    for (q, d), s in SCORES.items():
        run.setdefault(q, {})[d] = s
    formats.write_run_json(tmp_path / "s.json", run)
    as_json = read_score_file(tmp_path / "s.json")
    for read in (trec, jsonl, as_json):
        assert {pair: r["logit_delta"] for pair, r in read.items()} == SCORES


def test_a_file_ranks_as_the_merged_scores_of_a_model(tmp_path, maps):
    """The same scores through a model's shards and merge, and through a file, give the
    same cascade run: the table then cannot tell them apart."""
    cand, first = maps
    shard = tmp_path / "shard.jsonl"
    formats.write_jsonl(
        shard,
        [
            {"query_id": q, "doc_id": d, "logprob_yes": s, "logprob_no": 0.0,
             "logit_delta": s, "p_yes": 0.5}
            for (q, d), s in SCORES.items()
        ],
    )  # fmt: skip
    merge_scores([shard], cand, first, 2, tmp_path / "m.jsonl", tmp_path / "m.run", "x")
    counts = import_scores(
        write_trec(tmp_path / "s.run", SCORES), cand, first, 2,
        tmp_path / "f.jsonl", tmp_path / "f.run", "x",
    )  # fmt: skip
    assert counts == {"pairs": 4, "extra": 0, "in_no_map": 0}
    assert formats.read_trec_run(tmp_path / "f.run") == formats.read_trec_run(tmp_path / "m.run")
    order = [(r["query_id"], r["doc_id"]) for _, r in formats.read_jsonl(tmp_path / "f.jsonl")]
    # ties (q2: 0.5 and 0.5) fall back to the first stage's order, as for a model
    assert order == [("q1", "v2"), ("q1", "v1"), ("q2", "v3"), ("q2", "v1")]


def test_missing_pairs_are_counted_and_named(tmp_path, maps):
    cand, first = maps
    partial = {k: v for k, v in SCORES.items() if k != ("q2", "v3")}
    with pytest.raises(ValueError, match=r"1 of the 4 candidate pairs .* \(q2, v3\)"):
        import_scores(
            write_trec(tmp_path / "s.run", partial), cand, first, 2,
            tmp_path / "f.jsonl", tmp_path / "f.run", "published",
        )  # fmt: skip
    assert not (tmp_path / "f.jsonl").exists()


def test_extra_pairs_are_counted_named_and_left_out(tmp_path, maps, caplog):
    cand, first = maps
    other = tmp_path / "other.json"
    formats.write_candidates(other, {"v7": ["q1"]})
    extra = SCORES | {("q1", "v7"): 9.0, ("q3", "v1"): 8.0}
    with caplog.at_level(logging.INFO):
        counts = import_scores(
            write_trec(tmp_path / "s.run", extra), cand, first, 2,
            tmp_path / "f.jsonl", tmp_path / "f.run", "x", others=[other],
        )  # fmt: skip
    assert counts == {"pairs": 4, "extra": 2, "in_no_map": 1}
    assert "1 scored pairs are in no candidate map" in caplog.text
    assert "(q3, v1)" in caplog.text
    assert "1 scored pairs belong to the other retrievers' candidate maps" in caplog.text
    written = {(r["query_id"], r["doc_id"]) for _, r in formats.read_jsonl(tmp_path / "f.jsonl")}
    assert written == set(SCORES)


@pytest.mark.parametrize(
    "name, lines, message",
    [
        ("s.run", ["q1 Q0 v1 1 2.0 t", "q1 Q0 v1 2 1.0 t"], ":2: duplicate entry for (q1, v1)"),
        ("s.run", ["q1 Q0 v1 1 nan t"], ":1: score 'nan' is not finite"),
        ("s.run", ["q1 Q0 v1 1 high t"], ":1: score 'high' is not a number"),
        ("s.run", ["q1 v1 1 2.0 t"], ":1: expected 'query_id Q0 doc_id rank score tag'"),
        (
            "s.jsonl",
            ['{"query_id": "q1", "doc_id": "v1", "logit_delta": 1}',
             '{"query_id": "q1", "doc_id": "v1", "logit_delta": 2}'],
            ":2: pair ('q1', 'v1') is scored twice (first on line 1)",
        ),
        ("s.jsonl", ['{"query_id": "q1", "doc_id": "v1", "logit_delta": NaN}'],
         ":1: pair ('q1', 'v1'): logit_delta nan is not a finite number"),
        ("s.jsonl", ['{"query_id": "q1", "doc_id": "v1", "logit_delta": "2"}'],
         ":1: pair ('q1', 'v1'): logit_delta '2' is not a finite number"),
        ("s.jsonl", ['{"query_id": 1, "doc_id": "v1", "logit_delta": 2}'],
         ":1: query_id 1 is not a string"),
        ("s.jsonl", ['{"query_id": "q 1", "doc_id": "v1", "logit_delta": 2}'],
         ":1: query_id 'q 1' is empty or holds whitespace"),
        ("s.jsonl", ['{"query_id": "q1", "doc_id": "v1"}'], ":1: missing field(s) logit_delta"),
    ],
)  # fmt: skip
def test_bad_score_files_name_file_and_line(tmp_path, name, lines, message):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(formats.FormatError) as error:
        read_score_file(path)
    assert f"{path}{message}" in str(error.value)


def test_jsonl_keeps_the_release_fields(tmp_path):
    record = {"query_id": "q1", "doc_id": "v1", "logprob_yes": -0.1, "logprob_no": -2.4,
              "logit_delta": 2.3, "p_yes": 0.9, "note": "not a score"}  # fmt: skip
    (tmp_path / "s.jsonl").write_text(json.dumps(record) + "\n")
    read = read_score_file(tmp_path / "s.jsonl")[("q1", "v1")]
    assert read == {k: v for k, v in record.items() if k != "note"}
