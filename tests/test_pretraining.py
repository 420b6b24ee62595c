"""The tiny models' pretraining world, their pretraining, and the caption audit."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from rankvideo import formats
from rankvideo.caption_audit import audit, caption_audit, demo_attributes, read_captions
from rankvideo.demo.data import ATTRIBUTES, DemoSettings, make_collection
from rankvideo.demo.pretraining import (
    ANSWER_P,
    judge_pairs,
    pretrain,
    read_world,
    reasoning,
    teacher_pairs,
    world_clips,
    write_world,
)
from rankvideo.demo.tiny_models import build

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
# steps of the judge test: enough for p(yes) to follow the matches on the world
JUDGE_STEPS = 300


@pytest.mark.parametrize("seed", [0, 3])
def test_the_world_holds_no_evaluation_combination(seed):
    settings = DemoSettings(seed=seed)
    _, queries, train, evals, _, _ = make_collection(settings)
    clips = world_clips(settings, per_combination=2)
    combos = {c.attributes for c in clips}
    assert not combos & {queries[q] for q in evals}
    # every other combination is there, as often as asked
    assert combos == {queries[q] for q in train} and len(clips) == 2 * len(train)


def test_reasoning_names_each_attribute_and_its_verdict():
    text = reasoning(("red", "circle", "left"), ("blue", "circle", "up"))
    assert text == "Colour blue differs, shape circle matches, motion up differs."


def test_teacher_pairs_are_grouped_by_matches():
    records = [
        {"colour": c, "shape": s, "motion": m, "caption": f"A {c} {s} moving {m}."}
        for c, s, m in [
            ("red", "circle", "left"),
            ("red", "square", "left"),
            ("blue", "square", "up"),
        ]
    ]
    pairs = teacher_pairs(records)
    assert set(pairs) == set(ANSWER_P) and sum(map(len, pairs.values())) == 9
    for matches, group in pairs.items():
        for query, shown, caption in group:
            assert sum(a == b for a, b in zip(query, shown, strict=True)) == matches
            assert caption == "A {} {} moving {}.".format(*shown)
    assert len(pairs[3]) == 3 and len(pairs[0]) == 2  # red circle left vs blue square up


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    write_world(DemoSettings(pretraining_clips=1, frames=8), folder)
    return folder


def test_the_world_is_written_as_videos_and_captions(world):
    records = read_world(world)
    assert len(records) == 48 and all((world / r["video"]).stat().st_size > 0 for r in records)
    for r in records:
        assert r["caption"] == "A {} {} moving {}.".format(*(r[k] for k in ATTRIBUTES))


@pytest.mark.parametrize("name", ["tiny-qwen3", "tiny-qwen3-vl"])
def test_pretraining_lowers_the_loss(world, tmp_path, name):
    spec = CONFIG["tiny_models"][name]
    model = build(tmp_path / name, spec, seed=0)
    weights = (model / "model.safetensors").read_bytes()
    task, arguments = {
        "qwen3_vl": (
            "captions",
            {"prompt": CONFIG["captions"]["prompt"], "video": dict(CONFIG["video"])},
        ),
        "qwen3": (
            "reasoning",
            {
                "instruction": CONFIG["teacher"]["instructions"]["demo"],
                "answer_words": CONFIG["teacher"]["answer_words"],
            },
        ),
    }[spec["architecture"]]
    settings = {"steps": 25, "batch_size": 4, "warmup_steps": 2, "sampled_vocabulary": 64}
    pretrain(model, world, task, settings, **arguments)
    record = json.loads((model / "pretraining.json").read_text())
    losses = record["losses"]
    assert len(losses) == 25 and sum(losses[-5:]) < 0.5 * sum(losses[:5])
    assert (model / "model.safetensors").read_bytes() != weights


def test_judge_pairs_are_grouped_by_matches():
    records = [
        {"colour": c, "shape": s, "motion": m}
        for c, s, m in [("red", "circle", "left"), ("blue", "circle", "up")]
    ]
    pairs = judge_pairs(records)
    assert set(pairs) == set(ANSWER_P) and sum(map(len, pairs.values())) == 4
    assert pairs[3] == [("a blue circle moving up", 1), ("a red circle moving left", 0)]
    assert pairs[1] == [("a blue circle moving up", 0), ("a red circle moving left", 1)]


def test_the_judge_learns_to_order_pairs_by_matches(world, tmp_path):
    """The base VLM's pretraining (task judge): the reranker's prompt on the world's
    (query, clip) pairs; afterwards p(yes) grows with the number of matching attributes."""
    from rankvideo.scoring import VLMReranker

    model = build(tmp_path / "vlm", CONFIG["tiny_models"]["tiny-qwen3-vl"], seed=0)
    template = CONFIG["prompt"]["template"]
    settings = {
        **CONFIG["tiny_models"]["tiny-qwen3-vl-instruct"]["pretrain"],
        "steps": JUDGE_STEPS,
    }
    task = settings.pop("task")
    pretrain(
        model, world, task, settings, template=template, answer_words=["yes", "no"],
        video=dict(CONFIG["video"], cache=None),
    )  # fmt: skip
    losses = json.loads((model / "pretraining.json").read_text())["losses"]
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.05
    records = read_world(world)
    by_matches = judge_pairs(records)
    reranker = VLMReranker(str(model), video=dict(CONFIG["video"], cache=None), profile=template)
    mean = {}
    for matches in (0, 3):
        pairs = by_matches[matches][:: max(1, len(by_matches[matches]) // 24)]
        queries = [query for query, _ in pairs]
        paths = [str(world / records[index]["video"]) for _, index in pairs]
        scored = reranker.score_batch(queries, paths)
        mean[matches] = np.mean([s["logit_delta"] for s in scored])
    assert mean[3] > mean[0] + 1.0, mean


def _captions(path, texts: dict):
    path.write_text("".join(json.dumps({"doc_id": d, "text": t}) + "\n" for d, t in texts.items()))
    return path


def test_caption_audit_counts_each_attribute(tmp_path):
    references = {"a": "A red circle moving left.", "b": "A blue square moving up."}
    captions = {"a": "A red square moving left.", "b": "A blue square moving up."}
    table = audit(captions, references, demo_attributes()).set_index("attribute")
    assert table.accuracy.to_dict() == {
        "colour": 1.0,
        "shape": 0.5,
        "motion": 1.0,
        "all": 0.5,
        "empty": 0.0,
    }
    # a caption that names two values of an attribute is wrong about it
    table = audit({"a": "A red or blue circle moving left."}, references, demo_attributes())
    assert table.set_index("attribute").accuracy["colour"] == 0.0


def test_shuffled_captions_fall_to_chance(tmp_path):
    """Mutation: captions joined to the wrong videos (the bug: a shifted or shuffled
    doc_id join in the captions step) must show in the audit."""
    clips = make_collection(DemoSettings())[0]
    references = {c.doc_id: c.caption() for c in clips}
    assert (audit(references, references, demo_attributes()).accuracy[:4] == 1).all()
    ids = list(references)
    texts = random.Random(0).sample(list(references.values()), len(ids))
    shuffled = dict(zip(ids, texts, strict=True))
    table = audit(shuffled, references, demo_attributes()).set_index("attribute")
    # chance: 1/6 colour, 1/3 shape, 1/4 motion
    assert table.accuracy["colour"] < 0.3 and table.accuracy["shape"] < 0.45
    assert table.accuracy["motion"] < 0.35


def test_caption_audit_refuses_bad_input(tmp_path):
    bad = tmp_path / "captions.jsonl"
    bad.write_text('{"doc_id": "a", "text": "x"}\n{"doc_id": "a", "text": "y"}\n')
    with pytest.raises(formats.FormatError, match=r"captions.jsonl:2: caption of 'a' given twice"):
        read_captions(bad)
    references = _captions(tmp_path / "references.jsonl", {"a": "A red circle moving left."})
    other = _captions(tmp_path / "other.jsonl", {"b": "A red circle moving left."})
    with pytest.raises(ValueError, match="no video has both a caption and a reference"):
        caption_audit(other, references, tmp_path / "audit.tsv")
