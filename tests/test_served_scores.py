"""Scores as the RANKVIDEO release serves them, and Qwen3-VL-Reranker's bf16 sigmoid,
beside the exact full-vocabulary scores."""

import logging
import math
from pathlib import Path

import pytest
import torch
import yaml

from rankvideo import formats
from rankvideo import rerank as rerank_cli
from rankvideo.pairs import (
    EXACT_FIELDS,
    SCORE_FIELDS,
    bf16_ties,
    candidate_pairs,
    merge_scores,
    served_counts,
)
from rankvideo.rerank import load_reranker, score_pairs
from rankvideo.scoring import VLMReranker, bf16_sigmoid, served_scores, yes_no_scores
from rankvideo.video import VideoSettings, load_video

DEMO_VIDEO = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=4096)
SCHEMA = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "schemas/config.schema.yaml").read_text()
)


def release_reading(log_probs: list[float], yes_ids, no_ids, top: int = 512) -> dict:
    """The release's rankvideo/inference.py over what vLLM V1 returns, restated: the
    `top` most likely tokens of the raw log-probabilities plus the sampled token (the
    most likely allowed one at temperature 0), then its log-sum-exp and 0.0 fallback."""
    order = sorted(range(len(log_probs)), key=lambda t: -log_probs[t])
    allowed = yes_ids + no_ids
    sampled = max(allowed, key=lambda t: log_probs[t])
    pos0 = {t: log_probs[t] for t in [*order[:top], sampled]}

    def logsumexp(xs):
        if not xs:
            return None
        m = max(xs)
        return m + math.log(sum(math.exp(x - m) for x in xs))

    yes = logsumexp([pos0[t] for t in yes_ids if t in pos0])
    no = logsumexp([pos0[t] for t in no_ids if t in pos0])
    if yes is None or no is None:
        return dict.fromkeys(SCORE_FIELDS, 0.0)
    delta = float(yes - no)
    return {"logprob_yes": yes, "logprob_no": no, "logit_delta": delta,
            "p_yes": 1.0 / (1.0 + math.exp(-delta))}  # fmt: skip


def log_probs_of(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1)


def test_served_reading_drops_what_vllm_does_not_return():
    vocab = 1000
    yes_ids, no_ids = [3, 700], [5, 900]
    logits = torch.zeros(3, vocab)
    logits[:, :512] = torch.linspace(5.5, 5.0, 512)  # the top 512: ids 0..511, no ties
    # row 0: every answer token in the top 512; row 1: yes id 700 just outside it;
    # row 2: every answer token outside it, yes 700 the most likely of them
    logits[0, 700], logits[0, 900] = 6.0, 6.0
    logits[1, 700], logits[1, 900] = 4.99, 6.0
    logits[2, [3, 5]] = torch.tensor([-1.0, -2.0])
    logits[2, 700], logits[2, 900] = -0.5, -3.0
    log_probs = log_probs_of(logits)
    served = served_scores(log_probs, yes_ids, no_ids)
    exact = yes_no_scores(logits, yes_ids, no_ids)
    for row, (s, e) in enumerate(zip(served, exact, strict=True)):
        expected = release_reading(log_probs[row].tolist(), yes_ids, no_ids)
        for field in SCORE_FIELDS:
            assert s[field] == expected[field], (row, field)
        if row == 0:
            assert s["served_missing"] == 0 and not s["served_fallback"]
            assert s["logit_delta"] == pytest.approx(e["logit_delta"], abs=1e-5)
    # row 0 lacks nothing; row 1 lacks yes 700, so its served delta is smaller
    assert served[1]["served_missing"] == 1 and not served[1]["served_fallback"]
    assert served[1]["logit_delta"] < exact[1]["logit_delta"] - 0.4
    # row 2: only the sampled token (yes 700) comes back, no side is empty: all four 0.0
    assert served[2]["served_missing"] == 3 and served[2]["served_fallback"]
    assert [served[2][f] for f in SCORE_FIELDS] == [0.0] * 4
    assert exact[2]["p_yes"] > 0.5


def test_bf16_sigmoid_saturates_and_ties():
    assert bf16_sigmoid([8.0, 9.0, 0.0]) == [1.0, 1.0, 0.5]
    assert 1 / (1 + math.exp(-8.0)) != 1 / (1 + math.exp(-9.0))
    records = [
        {"query_id": "q1", "doc_id": "a", "logit_delta": 8.0, "authors_p_yes": 1.0},
        {"query_id": "q1", "doc_id": "b", "logit_delta": 9.0, "authors_p_yes": 1.0},
        {"query_id": "q1", "doc_id": "c", "logit_delta": 9.0, "authors_p_yes": 1.0},
        {"query_id": "q1", "doc_id": "d", "logit_delta": 0.0, "authors_p_yes": 0.5},
        {"query_id": "q2", "doc_id": "a", "logit_delta": 8.0, "authors_p_yes": 1.0},
    ]
    # q1: a-b and a-c tie in bf16 with different exact scores; b-c were equal already
    assert bf16_ties(records) == {"ties": 2, "queries": ["q1"]}


@pytest.fixture(scope="module")
def served(tiny_vlm):
    return VLMReranker(
        str(tiny_vlm), video=DEMO_VIDEO, profile="rankvideo-release", scores="served"
    )


def test_the_tiny_model_served_as_the_release_serves_it(served, tiny_vlm, demo_data):
    exact = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="rankvideo-release")
    video = load_video(str(sorted(demo_data["videos"].glob("*.mp4"))[0]), served.video)
    queries = ["a red circle moving left", "a green square"]
    scores = served.score_decoded(queries, [video, video])
    assert set(scores[0]) == set(served.fields)
    assert served.identity()["scores"] == "served" and "scores" not in exact.identity()
    with torch.inference_mode():
        logits = served.model(**served.inputs(queries, [video, video])).logits[:, -1, :]
    theirs = exact.score_decoded(queries, [video, video])
    for row, (score, mine) in enumerate(zip(scores, theirs, strict=True)):
        expected = release_reading(
            log_probs_of(logits[row]).tolist(), served.yes_ids, served.no_ids
        )
        for field in SCORE_FIELDS:
            assert score[field] == pytest.approx(expected[field], abs=1e-5)
            assert score[f"exact_{field}"] == mine[field]  # the default reading, unchanged
    # a random tiny model spreads its mass over 151k tokens: some answer tokens lie
    # outside the top 512, so the served reading lacks them
    assert all(s["served_missing"] > 0 for s in scores)


def test_served_records_and_their_counts_reach_the_merge(served, tmp_path, demo_data, caplog):
    videos = sorted(demo_data["videos"].glob("*.mp4"))[:2]
    manifest = {v.stem: str(v) for v in videos}
    queries = {"q1": "a red circle", "q2": "a blue square moving up"}
    cmap = {v.stem: ["q1", "q2"] for v in videos}
    caplog.set_level(logging.INFO)
    records = score_pairs(served, candidate_pairs([cmap]), queries, manifest, tmp_path / "0.jsonl")
    counts = served_counts(records)
    assert counts["pairs"] == 4 and counts["differ"] == 4
    assert "4 of 4 served scores differ from the exact ones" in caplog.text
    assert f"{counts['fallback']} of them the 0.0 fallback" in caplog.text
    formats.write_candidates(tmp_path / "c.json", cmap)
    formats.write_run_json(tmp_path / "fs.json", {q: {v: 1.0 for v in cmap} for q in queries})
    merge_scores(
        [tmp_path / "0.jsonl"], tmp_path / "c.json", tmp_path / "fs.json", 5,
        tmp_path / "m.jsonl", tmp_path / "m.run", "served",
    )  # fmt: skip
    merged = [r for _, r in formats.read_jsonl(tmp_path / "m.jsonl")]
    assert all(set(EXACT_FIELDS) <= set(r) for r in merged)
    # a shard without the exact fields, or with a field of the wrong type, is refused
    bad = [{k: v for k, v in records[0].items() if k != "exact_p_yes"}, *records[1:]]
    formats.write_jsonl(tmp_path / "1.jsonl", [records[1], *bad[:1]])
    with pytest.raises(formats.FormatError, match=r"1.jsonl:2: pair .* has the fields"):
        merge_scores(
            [tmp_path / "1.jsonl"], tmp_path / "c.json", tmp_path / "fs.json", 5,
            tmp_path / "m.jsonl", tmp_path / "m.run", "served",
        )  # fmt: skip
    formats.write_jsonl(tmp_path / "2.jsonl", [{**records[0], "served_missing": "3"}])
    with pytest.raises(formats.FormatError, match=r"2.jsonl:1: .*served_missing '3' is invalid"):
        merge_scores(
            [tmp_path / "2.jsonl"], tmp_path / "c.json", tmp_path / "fs.json", 5,
            tmp_path / "m.jsonl", tmp_path / "m.run", "served",
        )  # fmt: skip


def test_the_qwen3_vl_reranker_profile_writes_the_authors_value(tiny_vlm, demo_data):
    reranker = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="qwen3-vl-reranker")
    video = load_video(str(sorted(demo_data["videos"].glob("*.mp4"))[0]), reranker.video)
    scores = reranker.score_decoded(["a red circle", "a green square"], [video, video])
    for score in scores:
        assert score["authors_p_yes"] == bf16_sigmoid([score["logit_delta"]])[0]
        assert score["authors_p_yes"] == pytest.approx(score["p_yes"], abs=4e-3)
        assert score["cut_tokens"] == 0 and score["query_lost"] is False


def test_the_setting_everywhere_defaults_to_exact(tiny_vlm):
    system = SCHEMA["properties"]["rerank"]["properties"]["models"]["additionalProperties"]
    setting = system["properties"]["scores"]
    assert setting["default"] == "exact" and setting["enum"] == ["exact", "served"]
    import inspect

    assert inspect.signature(VLMReranker).parameters["scores"].default == "exact"
    assert inspect.signature(load_reranker).parameters["scores"].default == "exact"
    parser_defaults = {}

    def capture(parser, args=None, namespace=None):
        parser_defaults.update({a.dest: (a.default, a.choices) for a in parser._actions})
        raise SystemExit

    original = rerank_cli.argparse.ArgumentParser.parse_args
    rerank_cli.argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            rerank_cli.main([])
    finally:
        rerank_cli.argparse.ArgumentParser.parse_args = original
    assert parser_defaults["scores"] == ("exact", ["exact", "served"])
    with pytest.raises(ValueError, match="scores 'top512': use one of exact, served"):
        VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, scores="top512")
    with pytest.raises(ValueError, match="engine transformers"):
        load_reranker(str(tiny_vlm), {}, None, 1, engine={"name": "vllm"}, scores="served")
