"""Interrupted outputs resume only for the same model, settings and inputs.

Each step that writes a `.partial` file (reranking, captions, teacher labels) is
interrupted for real, then rerun: with the same fingerprint it resumes, and with a
retrained model, another template or other inputs it logs what differs and starts
afresh, so an old model's numbers never reach the new output.
"""

import logging
import os
import shutil

import pytest

from rankvideo import formats
from rankvideo.captions import Captioner, caption_videos
from rankvideo.demo.tiny_models import build, build_vlm
from rankvideo.fingerprint import Stamp, differences
from rankvideo.pairs import candidate_pairs
from rankvideo.rerank import score_pairs
from rankvideo.scoring import VLMReranker
from rankvideo.teacher import ReasoningTeacher, judge_pairs
from rankvideo.video import VideoSettings

DEMO_VIDEO = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=4096)


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, obj, method: str, calls: int) -> None:
    """Let `obj.method` run `calls` times, then raise as a killed job would stop."""
    real = getattr(obj, method)
    count = {"n": 0}

    def wrapped(*args, **kwargs):
        if count["n"] == calls:
            raise Interrupted(method)
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, method, wrapped)


@pytest.fixture(scope="module")
def model_copy(tiny_vlm, tmp_path_factory):
    """A private copy of the tiny VLM, so a test can 'retrain' it in place."""
    return shutil.copytree(tiny_vlm, tmp_path_factory.mktemp("vlm") / "model")


@pytest.fixture
def task(demo_data):
    videos = sorted(demo_data["videos"].glob("*.mp4"))[:3]
    manifest = {v.stem: str(v) for v in videos}
    queries = {"q1": "a red circle moving left", "q2": "a green square"}
    pairs = candidate_pairs([{v: ["q1", "q2"] for v in manifest}])
    return manifest, queries, pairs


def interrupted_scoring(monkeypatch, reranker, task, output):
    """Score until the second video, as a job killed mid-shard; returns the partial records."""
    manifest, queries, pairs = task
    with monkeypatch.context() as patch:
        interrupt_after(patch, reranker, "score_video", 1)
        with pytest.raises(Interrupted):
            score_pairs(reranker, pairs, queries, manifest, output)
    partial = output.with_name(output.name + ".partial")
    return [r for _, r in formats.read_jsonl(partial)]


def test_same_scorer_resumes(monkeypatch, model_copy, task, tmp_path, caplog):
    reranker = VLMReranker(str(model_copy), video=DEMO_VIDEO, profile="short")
    output = tmp_path / "scores.jsonl"
    done = interrupted_scoring(monkeypatch, reranker, task, output)
    assert len(done) == 2  # the first video's two queries
    caplog.set_level(logging.INFO)
    records = score_pairs(reranker, task[2], task[1], task[0], output)
    assert "resuming: 2 records" in caplog.text and "starting afresh" not in caplog.text
    assert len(records) == 6 and not output.with_name("scores.jsonl.partial").exists()
    assert not output.with_name("scores.jsonl.fingerprint.json").exists()


@pytest.mark.parametrize(
    "change, named",
    [
        ("template", "scorer.template differ"),
        ("retrained", "scorer.model.files differ"),
        ("query_text", "queries differ"),
    ],
)
def test_stale_partial_scores_are_not_resumed(
    change, named, monkeypatch, model_copy, task, tmp_path, caplog
):
    manifest, queries, pairs = task
    reranker = VLMReranker(str(model_copy), video=DEMO_VIDEO, profile="short")
    output = tmp_path / "scores.jsonl"
    interrupted_scoring(monkeypatch, reranker, task, output)
    partial = output.with_name("scores.jsonl.partial")
    # mark the partial records: a resumed run would keep these impossible values
    marked = [{**r, "logit_delta": 123.0} for _, r in formats.read_jsonl(partial)]
    formats.write_jsonl(partial, marked)
    if change == "template":
        reranker = VLMReranker(str(model_copy), video=DEMO_VIDEO, profile="chat")
    elif change == "retrained":  # stage 2 wrote a new model at the same path
        weights = model_copy / "model.safetensors"
        weights.write_bytes(weights.read_bytes())
        reranker = VLMReranker(str(model_copy), video=DEMO_VIDEO, profile="short")
    else:
        queries = {**queries, "q1": "a blue triangle moving up"}
    caplog.set_level(logging.INFO)
    records = score_pairs(reranker, pairs, queries, manifest, output)
    assert f"({named}): starting afresh" in caplog.text
    assert "resuming" not in caplog.text
    assert len(records) == 6 and all(r["logit_delta"] != 123.0 for r in records)


def _marked(output) -> None:
    """Give the partial records an impossible score: a kept one still has it afterwards."""
    partial = output.with_name(output.name + ".partial")
    formats.write_jsonl(
        partial, [{**r, "logit_delta": 123.0} for _, r in formats.read_jsonl(partial)]
    )


def test_pairs_scored_before_a_broken_video_are_kept_once_it_is_fixed(
    model_copy, task, tmp_path, caplog
):
    manifest, queries, pairs = task
    broken = next(iter(manifest))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video")
    reranker = VLMReranker(str(model_copy), video=DEMO_VIDEO, profile="short")
    output = tmp_path / "scores.jsonl"
    with pytest.raises(RuntimeError, match="1 videos could not be decoded.*the 4 scored pairs"):
        score_pairs(reranker, pairs, queries, {**manifest, broken: str(clip)}, output)
    _marked(output)
    shutil.copy(manifest[broken], clip)  # fixed
    caplog.set_level(logging.INFO)
    records = score_pairs(reranker, pairs, queries, {**manifest, broken: str(clip)}, output)
    assert "resuming: 4 records" in caplog.text and "starting afresh" not in caplog.text
    assert "scored 2 pairs of 1 videos" in caplog.text
    assert sorted(r["doc_id"] for r in records if r["logit_delta"] != 123.0) == [broken] * 2


def test_a_rebuilt_video_drops_only_its_own_pairs(monkeypatch, model_copy, task, tmp_path, caplog):
    manifest, queries, pairs = task
    reranker = VLMReranker(str(model_copy), video=DEMO_VIDEO, profile="short")
    output = tmp_path / "scores.jsonl"
    with monkeypatch.context() as patch:
        interrupt_after(patch, reranker, "score_video", 2)
        with pytest.raises(Interrupted):
            score_pairs(reranker, pairs, queries, manifest, output)
    _marked(output)
    first, second = list(manifest)[:2]
    rebuilt = tmp_path / "first.mp4"
    shutil.copy(manifest[first], rebuilt)
    caplog.set_level(logging.INFO)
    records = score_pairs(reranker, pairs, queries, {**manifest, first: str(rebuilt)}, output)
    assert (
        f"1 doc_id values changed since their records were written (or have no stamp), "
        f"e.g. ['{first}']: dropping their 2 records, the 2 others are kept" in caplog.text
    )
    assert sorted(r["doc_id"] for r in records if r["logit_delta"] == 123.0) == [second] * 2


def test_another_checkpoint_of_equal_sizes_and_times_is_not_resumed(
    monkeypatch, config, task, tmp_path, caplog
):
    """An archive of another checkpoint extracted at the same path keeps every file's size
    and time; the content digest tells them apart."""
    name = config["models"]["captioner"]  # a tiny Qwen3-VL built from its architecture
    model = build_vlm(tmp_path / "model", config["tiny_models"][name], seed=0)
    other = build_vlm(tmp_path / "other", config["tiny_models"][name], seed=1)
    reranker = VLMReranker(str(model), video=DEMO_VIDEO, profile="short")
    output = tmp_path / "scores.jsonl"
    interrupted_scoring(monkeypatch, reranker, task, output)
    _marked(output)
    for path in sorted(p for p in other.rglob("*") if p.is_file()):
        mine = model / path.relative_to(other)
        stat = mine.stat()
        assert path.stat().st_size == stat.st_size
        mine.write_bytes(path.read_bytes())
        os.utime(mine, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    caplog.set_level(logging.INFO)
    reranker = VLMReranker(str(model), video=DEMO_VIDEO, profile="short")
    records = score_pairs(reranker, task[2], task[1], task[0], output)
    assert "(scorer.model.content differ): starting afresh" in caplog.text
    assert len(records) == 6 and all(r["logit_delta"] != 123.0 for r in records)


def test_partial_without_a_record_is_not_trusted(model_copy, task, tmp_path, caplog):
    manifest, queries, pairs = task
    output = tmp_path / "scores.jsonl"
    score = {"logprob_yes": -1.0, "logprob_no": -2.0, "logit_delta": 123.0, "p_yes": 0.7}
    video = pairs[0][0]
    formats.write_jsonl(output.with_name("scores.jsonl.partial"), [
        {"query_id": "q1", "doc_id": video, **score}
    ])  # fmt: skip
    reranker = VLMReranker(str(model_copy), video=DEMO_VIDEO, profile="short")
    records = score_pairs(reranker, pairs, queries, manifest, output)
    assert "(no record of them): starting afresh" in caplog.text
    assert all(r["logit_delta"] != 123.0 for r in records)


def test_captions_of_other_settings_are_not_resumed(monkeypatch, tiny_vlm, task, tmp_path, caplog):
    manifest, _, _ = task
    output = tmp_path / "captions.jsonl"
    captioner = Captioner(str(tiny_vlm), DEMO_VIDEO, max_new_tokens=4, batch_size=1)
    with monkeypatch.context() as patch:
        interrupt_after(patch, captioner, "caption_decoded", 1)
        with pytest.raises(Interrupted):
            caption_videos(captioner, list(manifest), manifest, output)
    caplog.set_level(logging.INFO)
    longer = Captioner(str(tiny_vlm), DEMO_VIDEO, max_new_tokens=6, batch_size=1)
    records = caption_videos(longer, list(manifest), manifest, output)
    assert "(captioner.max_new_tokens differ): starting afresh" in caplog.text
    assert len(records) == 3 and all(r["meta"]["tokens"] <= 6 for r in records)


def test_teacher_labels_of_another_instruction_are_not_resumed(
    monkeypatch, config, task, tmp_path, caplog
):
    lm = build(tmp_path / "tiny-qwen3", config["tiny_models"]["tiny-qwen3"])
    _, queries, pairs = task
    captions = {v: "A red circle moves left." for v, _ in pairs}
    output = tmp_path / "labels.jsonl"
    teacher = ReasoningTeacher(str(lm), max_reasoning_tokens=2, batch_size=2)
    with monkeypatch.context() as patch:
        interrupt_after(patch, teacher, "judge", 1)
        with pytest.raises(Interrupted):
            judge_pairs(teacher, pairs, queries, captions, {}, output)
    caplog.set_level(logging.INFO)
    strict = ReasoningTeacher(
        str(lm), instruction="Only exact matches count.", max_reasoning_tokens=2, batch_size=2
    )
    records = judge_pairs(strict, pairs, queries, captions, {}, output)
    assert "(teacher.instruction differ): starting afresh" in caplog.text
    assert len(records) == 6


def test_differences_name_nested_keys(tmp_path, caplog):
    old = {"scorer": {"template": "short", "video": {"fps": 2.0}}, "queries": "a"}
    new = {"scorer": {"template": "chat", "video": {"fps": 2.0}}, "queries": "b", "extra": 1}
    assert differences(old, new) == ["extra", "queries", "scorer.template"]
    stamp = Stamp(tmp_path / "stamp.json")
    stamp.write(old)
    assert stamp.matches(old, "work") and not stamp.matches(new, "work")
    assert "(extra, queries, scorer.template differ)" in caplog.text
    (tmp_path / "stamp.json").write_text('{"cut sh')  # a stamp cut short by a crash
    assert not stamp.matches(old, "work") and "no record of them" in caplog.text
