"""The tiny models' pretraining world, their pretraining, and the caption audit."""

import json
import random
from pathlib import Path

import pytest
import yaml

from rankvideo import formats
from rankvideo.caption_audit import audit, caption_audit, demo_attributes, read_captions
from rankvideo.demo.data import ATTRIBUTES, DemoSettings, make_collection
from rankvideo.demo.pretraining import (
    ANSWER_P,
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
    task = {
        "qwen3_vl": {"prompt": CONFIG["captions"]["prompt"], "video": dict(CONFIG["video"])},
        "qwen3": {
            "instruction": CONFIG["teacher"]["instructions"]["demo"],
            "answer_words": CONFIG["teacher"]["answer_words"],
        },
    }[spec["architecture"]]
    settings = {"steps": 25, "batch_size": 4, "warmup_steps": 2, "sampled_vocabulary": 64}
    pretrain(model, world, spec["architecture"], settings, **task)
    record = json.loads((model / "pretraining.json").read_text())
    losses = record["losses"]
    assert len(losses) == 25 and sum(losses[-5:]) < 0.5 * sum(losses[:5])
    assert (model / "model.safetensors").read_bytes() != weights


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
