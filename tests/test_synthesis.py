"""Captions, teacher labels and the training-data join, on the tiny models."""

import pytest

from rankvideo import formats
from rankvideo import generate_reasoning as reasoning_cli
from rankvideo.captions import Captioner, caption_videos, videos_needed
from rankvideo.demo.tiny_models import build
from rankvideo.teacher import Evidence, ReasoningTeacher, judge_pairs, parse_generation
from rankvideo.training_data import build as build_training
from rankvideo.training_data import caption_records, synthesize
from rankvideo.video import VideoSettings

DEMO_VIDEO = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=4096)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, config):
    return build(tmp_path_factory.mktemp("lm") / "tiny-qwen3", config["tiny_models"]["tiny-qwen3"])


@pytest.fixture(scope="module")
def teacher(tiny_lm):
    return ReasoningTeacher(str(tiny_lm), max_reasoning_tokens=6, batch_size=4)


class ScriptedTeacher(ReasoningTeacher):
    """The real model and scoring, with hand-written generations in place of sampling."""

    generations: list[str] = []

    def _generate(self, prompts):
        return [self.tokenizer.encode(g, add_special_tokens=False) for g in self.generations]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "The caption shows a red circle.</think> true",
            ("The caption shows a red circle.", 1, True),
        ),
        ("wrong colour\n</think>\nFALSE.", ("wrong colour", 0, True)),
        ("hmm </think> 'True'", ("hmm", 1, True)),
        ("no closing tag, still thinking", ("no closing tag, still thinking", None, False)),
        ("done</think>", ("done", None, True)),  # answer absent
        ("done</think> maybe true", ("done", None, True)),  # malformed: first word is not an answer
    ],
)
def test_parse_generation(text, expected):
    assert parse_generation(text, ("true", "false")) == expected


def test_answer_variants_of_true_and_false(teacher):
    decode = teacher.tokenizer.decode
    assert {"true", "True", "TRUE", " true", " True"} <= {decode([i]) for i in teacher.yes_ids}
    assert {"false", "False", "FALSE", " false", " False"} <= {decode([i]) for i in teacher.no_ids}


def test_forced_answer_is_closed_and_scored(teacher):
    (judged,) = teacher.judge(["a red circle"], [Evidence("A red circle moves left.")])
    # a random tiny model never closes its reasoning within 6 tokens
    assert judged["forced_answer"] and judged["reasoning_tokens"] == 6
    assert judged["label_source"] == "score"
    assert 0.0 < judged["teacher_p_yes"] < 1.0
    assert judged["teacher_label"] == int(judged["teacher_logit_delta"] > 0)


def test_generated_answers_become_labels(tiny_lm):
    scripted = ScriptedTeacher(str(tiny_lm), max_reasoning_tokens=32)
    scripted.generations = [
        "colour and motion match</think> true",
        "the shape differs</think> false",
        "unsure</think> perhaps",
        "word " * 40,  # past the budget: forced
    ]
    queries = ["a red circle moving left"] * 4
    results = scripted.judge(queries, [Evidence("A red circle moves left.")] * 4)
    assert [r["teacher_label"] for r in results[:2]] == [1, 0]
    assert [r["label_source"] for r in results] == ["answer", "answer", "score", "score"]
    assert [r["forced_answer"] for r in results] == [False, False, False, True]
    assert results[0]["teacher_reasoning"] == "colour and motion match"
    assert results[3]["reasoning_tokens"] == 32
    # the soft label is read at the slot after </think>, whatever the answer said
    assert results[0]["teacher_p_yes"] != results[1]["teacher_p_yes"]


def test_asr_has_its_own_budget(teacher):
    long_asr = "words spoken in the video " * 200
    prompt = teacher.prompt("q", Evidence("a caption", long_asr))
    speech = prompt.split("Video speech: ")[1].split("\n")[0]
    assert len(teacher.tokenizer.encode(speech)) <= teacher.max_asr_tokens + 1
    assert "Video speech" not in teacher.prompt("q", Evidence("a caption"))


def test_predict_scores_text_pairs(teacher):
    results = teacher.predict(
        [("a red circle", "A red circle."), ("a blue square", "A red circle.")]
    )
    assert len(results) == 2 and all(0 < r["teacher_p_yes"] < 1 for r in results)


def test_judge_pairs_names_unknown_ids(teacher, tmp_path):
    queries = {"q1": "a red circle"}
    with pytest.raises(ValueError, match=r"not in the queries file: \['q9'\]"):
        judge_pairs(teacher, [("v1", "q9")], queries, {"v1": "x"}, {}, tmp_path / "l.jsonl")
    with pytest.raises(ValueError, match=r"have no caption: \['v2'\]"):
        judge_pairs(teacher, [("v2", "q1")], queries, {"v1": "x"}, {}, tmp_path / "l.jsonl")


def test_captions_for_every_requested_video(tiny_vlm, demo_data, tmp_path):
    manifest = {p.stem: str(p) for p in sorted(demo_data["videos"].glob("*.mp4"))[:5]}
    captioner = Captioner(str(tiny_vlm), DEMO_VIDEO, max_new_tokens=4, batch_size=2)
    records = caption_videos(captioner, sorted(manifest), manifest, tmp_path / "captions.jsonl")
    assert [r["doc_id"] for r in records] == sorted(manifest)
    assert all(r["meta"]["tokens"] == 4 and r["meta"]["frames"] == 4 for r in records)
    assert formats.read_captions(tmp_path / "captions.jsonl").keys() == manifest.keys()
    with pytest.raises(ValueError, match=r"1 videos to caption have no file.*'v9999'"):
        caption_videos(captioner, ["v9999"], manifest, tmp_path / "more.jsonl")


def test_videos_needed_adds_judged_training_positives(tmp_path):
    formats.write_candidates(tmp_path / "c.json", {"v1": ["q1"], "v2": ["q2"]})
    formats.write_qrels(tmp_path / "qrels.txt", {"q1": {"v3": 1, "v4": 0}, "q3": {"v5": 2}})
    formats.write_ids(tmp_path / "train.txt", ["q1"])
    needed = videos_needed([tmp_path / "c.json"], tmp_path / "qrels.txt", tmp_path / "train.txt")
    assert needed == ["v1", "v2", "v3"]


def test_join_counts(tmp_path):
    formats.write_queries(tmp_path / "queries.tsv", {"q1": "red", "q2": "blue"})
    formats.write_qrels(tmp_path / "qrels.txt", {"q1": {"a": 2, "c": 1}, "q2": {"b": 0}})
    formats.write_ids(tmp_path / "train.txt", ["q1", "q2"])
    formats.write_manifest(tmp_path / "videos.tsv", {d: f"{d}.mp4" for d in "abc"})
    formats.write_jsonl(
        tmp_path / "captions.jsonl",
        [{"doc_id": "a", "text": "A red one."}, {"doc_id": "b", "text": ""}],
    )
    labels = [
        {"query_id": "q1", "doc_id": "a", "teacher_p_yes": 0.9, "teacher_reasoning": "r1"},
        {"query_id": "q1", "doc_id": "b", "teacher_p_yes": 0.2, "teacher_reasoning": "r2"},
        {"query_id": "q2", "doc_id": "b", "teacher_p_yes": 0.4, "teacher_reasoning": "r3"},
    ]
    formats.write_jsonl(tmp_path / "labels.jsonl", labels)
    records = synthesize(
        *(tmp_path / f for f in ("labels.jsonl", "captions.jsonl", "qrels.txt", "queries.tsv")),
        tmp_path / "videos.tsv",
        tmp_path / "train.txt",
    )
    # the judged positive (q1, c) that the teacher did not label is added, unlabelled
    by_pair = {(r["query_id"], r["doc_id"]): r for r in records}
    assert set(by_pair) == {("q1", "a"), ("q1", "b"), ("q2", "b"), ("q1", "c")}
    assert by_pair[("q1", "c")]["teacher_p_yes"] is None and by_pair[("q1", "c")]["true_label"] == 1
    assert by_pair[("q1", "b")]["true_label"] == 0 and by_pair[("q1", "a")]["videos"] == ["a.mp4"]
    summary = build_training(
        records, tmp_path / "r.jsonl", tmp_path / "c.jsonl", tmp_path / "n.tsv"
    )
    assert summary["positives"] == 2 and summary["negatives"] == 2
    assert summary["queries_without_positive"] == 1  # q2
    assert summary["pairs_without_teacher_label"] == 1
    assert summary["pairs_without_caption"] == 3  # b is empty, c has no caption at all
    assert [r["doc_id"] for r in caption_records(records)] == ["a"]
    assert formats.read_training_records(tmp_path / "r.jsonl")[0]["query"] == "red"


def test_join_names_a_query_missing_from_the_queries_file(tmp_path):
    formats.write_queries(tmp_path / "queries.tsv", {"q1": "red"})
    formats.write_jsonl(
        tmp_path / "labels.jsonl",
        [{"query_id": "q7", "doc_id": "a", "teacher_p_yes": 0.5, "teacher_reasoning": ""}],
    )
    with pytest.raises(formats.FormatError, match=r"labels.jsonl:1: query 'q7' is not in"):
        synthesize(
            tmp_path / "labels.jsonl",
            None,
            None,
            tmp_path / "queries.tsv",
            None,
            None,
        )


def test_generate_reasoning_command(tiny_lm, tmp_path):
    formats.write_queries(tmp_path / "q.tsv", {"q1": "a red circle", "q2": "a blue square"})
    (tmp_path / "c.trec").write_text(
        "q1 Q0 v1 1 2.0 bm25\nq1 Q0 v2 2 1.0 bm25\nq2 Q0 v2 1 3.0 bm25\n"
    )
    formats.write_jsonl(
        tmp_path / "cap.jsonl", [{"doc_id": "v1", "text": "red"}, {"doc_id": "v2", "text": "blue"}]
    )
    reasoning_cli.main(
        ["--queries", str(tmp_path / "q.tsv"), "--candidates", str(tmp_path / "c.trec")]
        + ["--captions-jsonl", str(tmp_path / "cap.jsonl"), "--output", str(tmp_path / "out.jsonl")]
        + ["--model-path", str(tiny_lm), "--topk", "1", "--max-reasoning-tokens", "4"]
    )
    records = [r for _, r in formats.read_jsonl(tmp_path / "out.jsonl")]
    assert {(r["query_id"], r["doc_id"]) for r in records} == {("q1", "v1"), ("q2", "v2")}
