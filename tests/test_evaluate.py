import json
import logging
import math

import pytest
import pytrec_eval

from rankvideo import formats
from rankvideo.evaluate import cascade, evaluate, evaluate_run, write_tables

LOG2 = math.log2


def dcg(gains):
    """trec_eval's DCG: linear gains, discount log2(rank + 1)."""
    return sum(g / LOG2(i + 2) for i, g in enumerate(gains))


QRELS = {"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"d": 1}, "q3": {"e": 1}}


def test_first_stage_ties_follow_trec_eval():
    # a and b tie: trec_eval puts the larger doc id, b, first
    ranking = cascade({"a": 1.0, "b": 1.0, "c": 2.0}, None, depth=10, where="q1")
    assert ranking == ["c", "b", "a"]
    table = evaluate_run(QRELS, {"q1": ranking, "q2": ["x", "d"]}, cutoffs=(5,))
    by_query = table.set_index("query_id")
    assert by_query.loc["q1", "ndcg@5"] == pytest.approx(dcg([0, 1, 2]) / dcg([2, 1]))
    assert by_query.loc["q2", "ndcg@5"] == pytest.approx(dcg([0, 1]) / dcg([1]))
    # q3 is judged but not in the run: it counts, as zero
    assert not by_query.loc["q3", "in_run"]
    assert by_query.loc["q3", "ndcg@5"] == 0.0
    assert by_query.loc["q1", "recall@5"] == 1.0


def test_first_stage_row_equals_pytrec_eval_on_the_run_file(tmp_path):
    qrels = {
        "q1": {"a": 2, "b": 0, "c": 1, "d": 1, "l": 1, "n": 1},
        "q2": {"x": 1, "y": 2},
        "q3": {"e": 1},  # not in the run: zero
    }
    # ties everywhere, some at the rank-10 cut, one across the whole query
    run = {
        "q1": {d: float(s) for d, s in zip("abcdefghijkl", "332221111111", strict=True)}
        | {"m": 0.30000001, "n": 0.3},  # a tie in single precision, as trec_eval keeps scores
        "q2": {d: 0.5 for d in "uvwxyz"},
        "q4": {"a": 1.0},  # not judged: not evaluated
    }
    formats.write_qrels(tmp_path / "qrels.txt", qrels)
    (tmp_path / "fs.json").write_text(json.dumps(run))
    summary, _ = evaluate(tmp_path / "qrels.txt", {"r": tmp_path / "fs.json"}, {}, depth=2)
    measures = {"ndcg_cut.5,10,20,50,100", "recall.5,10,20,50,100"}
    plain = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    row = summary.set_index("system").loc["first_stage"]
    for k in (5, 10, 20, 50, 100):
        for ours, theirs in ((f"ndcg@{k}", f"ndcg_cut_{k}"), (f"recall@{k}", f"recall_{k}")):
            expected = sum(plain.get(q, {}).get(theirs, 0.0) for q in qrels) / len(qrels)
            assert row[ours] == pytest.approx(expected, abs=1e-12), ours


def test_reranked_ties_fall_back_to_the_trec_eval_first_stage_order():
    first = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert cascade(first, {"a": 0.0, "b": 0.0, "c": 0.0}, depth=3, where="q") == ["c", "b", "a"]
    # the top `depth` is the trec_eval top: c and b, not a
    assert cascade(first, {"c": 0.0, "b": 1.0}, depth=2, where="q") == ["b", "c", "a"]


def test_rel_change_is_empty_when_the_first_stage_scores_zero(tmp_path, caplog):
    formats.write_qrels(tmp_path / "qrels.txt", {"q1": {"z": 1}})
    (tmp_path / "fs.json").write_text(json.dumps({"q1": {"a": 2.0, "z": 1.0}}))
    (tmp_path / "zero.json").write_text(json.dumps({"q1": {"a": 1.0}}))
    formats.write_jsonl(
        tmp_path / "sys.jsonl",
        [{"query_id": "q1", "doc_id": d, "logit_delta": s} for d, s in (("a", 0.0), ("z", 1.0))],
    )
    with caplog.at_level(logging.WARNING, logger="rankvideo.evaluate"):
        summary, per_query = evaluate(
            tmp_path / "qrels.txt",
            {"good": tmp_path / "fs.json", "nothing": tmp_path / "zero.json"},
            {("good", "sys"): tmp_path / "sys.jsonl", ("nothing", "sys"): tmp_path / "sys.jsonl"},
            depth=1,
        )
    rows = summary.set_index(["retriever", "system"])
    assert math.isnan(rows.loc[("nothing", "sys"), "rel_change_ndcg@10"])
    assert math.isnan(rows.loc[("nothing", "first_stage"), "rel_change_ndcg@10"])
    assert rows.loc[("good", "first_stage"), "rel_change_ndcg@10"] == 0.0
    assert "nothing: the first stage scores nDCG@10 0" in caplog.text
    write_tables(summary, per_query, tmp_path / "ndcg.tsv", tmp_path / "per_query.tsv")
    text = (tmp_path / "ndcg.tsv").read_text()
    assert "inf" not in text
    cells = {tuple(line.split("\t")[:2]): line.split("\t")[-1] for line in text.splitlines()[1:]}
    assert cells[("nothing", "sys")] == ""


def test_cascade_reranks_only_the_top_depth():
    first = {"c": 3.0, "a": 2.0, "b": 1.0, "d": 0.5}
    assert cascade(first, {"c": 0.0, "a": 5.0}, depth=2, where="q") == ["a", "c", "b", "d"]
    # reranker ties fall back to the first-stage order
    assert cascade(first, {"c": 1.0, "a": 1.0}, depth=2, where="q") == ["c", "a", "b", "d"]
    with pytest.raises(ValueError, match=r"retr/sys/q1: no score for 1 top-2 candidates.*'a'"):
        cascade(first, {"c": 1.0}, depth=2, where="retr/sys/q1")


def test_evaluate_tables(tmp_path):
    formats.write_qrels(tmp_path / "qrels.txt", QRELS)
    first = {"q1": {"c": 3.0, "a": 2.0, "b": 1.0}, "q2": {"x": 2.0, "d": 1.0}}
    (tmp_path / "fs.json").write_text(json.dumps(first))
    scored = [("q1", "c", -2.0), ("q1", "a", 4.0), ("q2", "x", 0.0), ("q2", "d", 1.0)]
    formats.write_jsonl(
        tmp_path / "sys.jsonl",
        [
            {"query_id": q, "doc_id": d, "logit_delta": s, "p_yes": 1 / (1 + math.exp(-s))}
            for q, d, s in scored
        ],
    )
    formats.write_ids(tmp_path / "eval.txt", ["q1", "q2", "q3"])
    summary, per_query = evaluate(
        tmp_path / "qrels.txt",
        {"r": tmp_path / "fs.json"},
        {("r", "sys"): tmp_path / "sys.jsonl"},
        depth=2,
        eval_queries=tmp_path / "eval.txt",
        cutoffs=(5, 10),
    )
    rows = summary.set_index("system")
    assert list(summary.system) == ["first_stage", "sys"]
    assert (summary.queries == 3).all() and (summary.missing_from_run == 1).all()
    fs_q1 = dcg([0, 2, 1]) / dcg([2, 1])
    fs_q2 = dcg([0, 1]) / dcg([1])
    assert rows.loc["first_stage", "ndcg@5"] == pytest.approx((fs_q1 + fs_q2 + 0) / 3)
    sys_q1 = dcg([2, 0, 1]) / dcg([2, 1])
    assert rows.loc["sys", "ndcg@5"] == pytest.approx((sys_q1 + 1.0 + 0) / 3)
    assert rows.loc["sys", "rel_change_ndcg@10"] == pytest.approx(
        rows.loc["sys", "ndcg@10"] / rows.loc["first_stage", "ndcg@10"] - 1
    )
    assert len(per_query) == 6
    # p_yes orders the pairs the same way here
    summary_p, _ = evaluate(
        tmp_path / "qrels.txt",
        {"r": tmp_path / "fs.json"},
        {("r", "sys"): tmp_path / "sys.jsonl"},
        depth=2,
        score_field="p_yes",
        eval_queries=tmp_path / "eval.txt",
    )
    assert summary_p.set_index("system").loc["sys", "ndcg@5"] == pytest.approx(
        rows.loc["sys", "ndcg@5"]
    )


def test_malformed_scores_name_the_line(tmp_path):
    formats.write_qrels(tmp_path / "qrels.txt", QRELS)
    (tmp_path / "fs.json").write_text(json.dumps({"q1": {"a": 1.0}}))
    (tmp_path / "sys.jsonl").write_text(
        '{"query_id": "q1", "doc_id": "a", "logit_delta": 1.0}\n'
        '{"query_id": "q1", "doc_id": "b", "logit_delta": "high"}\n'
    )
    with pytest.raises(formats.FormatError, match=r"sys.jsonl:2: logit_delta 'high'"):
        evaluate(
            tmp_path / "qrels.txt",
            {"r": tmp_path / "fs.json"},
            {("r", "sys"): tmp_path / "sys.jsonl"},
            depth=2,
        )


def test_mean_rows_average_the_retrievers(tmp_path, caplog):
    formats.write_qrels(tmp_path / "qrels.txt", QRELS)
    (tmp_path / "good.json").write_text(json.dumps({"q1": {"a": 3.0, "b": 2.0}, "q2": {"d": 1.0}}))
    (tmp_path / "poor.json").write_text(json.dumps({"q1": {"c": 3.0, "b": 2.0, "a": 1.0}}))
    formats.write_jsonl(
        tmp_path / "sys.jsonl",
        [
            {"query_id": "q1", "doc_id": d, "logit_delta": s}
            for d, s in (("a", 2), ("b", 1), ("c", 0))
        ]
        + [{"query_id": "q2", "doc_id": "d", "logit_delta": 0.0}],
    )
    runs = {"good": tmp_path / "good.json", "poor": tmp_path / "poor.json"}
    summary, per_query = evaluate(
        tmp_path / "qrels.txt",
        runs,
        {(r, "sys"): tmp_path / "sys.jsonl" for r in runs},
        depth=3,
        cutoffs=(5, 10),
    )
    assert [tuple(r) for r in summary[["retriever", "system"]].values] == [
        ("good", "first_stage"), ("good", "sys"), ("poor", "first_stage"), ("poor", "sys"),
        ("mean", "first_stage"), ("mean", "sys"),
    ]  # fmt: skip
    rows = summary.set_index(["retriever", "system"])
    for system in ("first_stage", "sys"):
        for column in ("ndcg@5", "ndcg@10", "recall@5", "recall@10"):
            expected = (rows.loc[("good", system), column] + rows.loc[("poor", system), column]) / 2
            assert rows.loc[("mean", system), column] == pytest.approx(expected), column
        # the same 3 judged queries for every retriever; missing ones summed (q3; q2, q3)
        assert rows.loc[("mean", system), "queries"] == 3
        assert rows.loc[("mean", system), "missing_from_run"] == 1 + 2
    mean = rows.loc["mean"]
    assert mean.loc["sys", "rel_change_ndcg@10"] == pytest.approx(
        mean.loc["sys", "ndcg@10"] / mean.loc["first_stage", "ndcg@10"] - 1
    )
    assert mean.loc["first_stage", "rel_change_ndcg@10"] == 0.0
    assert "mean/" not in caplog.text  # missing queries are reported per retriever only
    # the per-query table has no mean rows; one retriever gets none either
    assert "mean" not in set(per_query.retriever)
    single, _ = evaluate(tmp_path / "qrels.txt", {"good": runs["good"]}, {}, depth=3)
    assert list(single.retriever) == ["good"]
    # a retriever may not take the mean rows' name
    with pytest.raises(ValueError, match="a retriever is named 'mean'"):
        evaluate(tmp_path / "qrels.txt", {"mean": runs["good"], "poor": runs["poor"]}, {}, depth=3)


def test_ranked_is_trec_evals_order_on_many_ties():
    """The vectorised sort against a plain one: descending single-precision score, then
    the tie-break rank, then doc id descending; scores that differ only beyond single
    precision tie, and scores beyond its range are infinite."""
    import random
    import struct

    def single(x):
        try:
            return struct.unpack("f", struct.pack("f", x))[0]
        except OverflowError:
            return math.copysign(math.inf, x)

    rng = random.Random(0)
    for trial in range(200):
        n = rng.randint(0, 60)
        ids = rng.sample([f"d{i:03d}" for i in range(300)] + ["é", "ä", "Z", "z"], n)
        pool = [0.0, -0.0, 1.0, 1.0 + 1e-12, 0.5, -2.5, 1e39, -1e39, 3.4e38]
        docs = {d: rng.choice(pool) if rng.random() < 0.6 else rng.gauss(0, 1) for d in ids}
        tiebreak = {d: rng.randint(0, 5) for d in ids if rng.random() < 0.7} if trial % 2 else None
        expected = sorted(
            sorted(docs, reverse=True),
            key=lambda d: (-single(docs[d]), (tiebreak or {}).get(d, math.inf)),
        )
        assert formats.ranked(docs, tiebreak) == expected
