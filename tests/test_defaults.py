"""One value per setting: the schema's defaults against the library's, key by key.

The schema's defaults (schemas/config.schema.yaml) are what a workflow run gets for a
key that its config leaves out; the library's (the training stages' DEFAULTS,
LossWeights, VideoSettings, the defaults of the classes and of the `python -m
rankvideo.*` command lines) are what a call without a config gets. The two agree,
except where DIFFERENT says why they must not.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from rankvideo import (
    bench,
    captions,
    depth,
    evaluate,
    generate_reasoning,
    rerank,
    significance,
    train_perception,
    train_reranker,
)
from rankvideo.captions import Captioner
from rankvideo.demo import data as demo_data
from rankvideo.elsewhere import VLLM_DEFAULTS
from rankvideo.loss_weights import LossWeights
from rankvideo.scoring import VLMReranker
from rankvideo.teacher import ReasoningTeacher
from rankvideo.video import VideoSettings

SCHEMA = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "schemas/config.schema.yaml").read_text()
)

# (schema key, library default) -> why they differ
DIFFERENT = {
    ("video.cache", "VideoSettings.cache"): "the workflow keeps decoded frames in its results/ "
    "folder; a call without a config has no such folder and decodes in place",
    ("video.cache", "rankvideo.captions --frame-cache"): "as VideoSettings.cache",
    ("video.cache", "rankvideo.rerank --frame-cache"): "as VideoSettings.cache",
    **{
        (f"video.{key}", f"rankvideo.rerank --{key.replace('_', '-')}"): "unset on the "
        "scoring command line: the model's own profile decides (a model trained here "
        "carries its frames), as the workflow scores every system but `base`"
        for key in ("fps", "max_frames", "min_pixels", "max_pixels")
    },
    ("prompt.template", "BenchSettings.template"): "the benchmark's command line measures "
    "the short prompt (README's numbers; --template chat for the other); the workflow's "
    "bench rule passes prompt.template",
    ("prompt.template", "rankvideo.bench --template"): "as BenchSettings.template",
}

# keys that only one side has, with the reason
SCHEMA_ONLY = {
    "stage1.captions": "which captions the workflow's training_data step writes for stage 1",
    "stage1.processes": "the processes the workflow starts (rankvideo.launch.run_stage)",
    "stage2.processes": "the processes the workflow starts (rankvideo.launch.run_stage)",
}
LIBRARY_ONLY = {
    "VideoSettings.patch_size": "not a setting: read from the model's own processor",
}


def schema_default(key: str):
    """The default that a workflow run gets for a dotted key such as `stage2.losses.tau_rank`:
    an object's default is made of its properties' defaults (as validation fills them in)."""
    node, parts = SCHEMA, key.split(".")
    while parts and parts[0] in node.get("properties", {}):
        node = node["properties"][parts.pop(0)]
    if parts:  # a key inside a default mapping (teacher.instructions.default)
        value = node["default"]
        for part in parts:
            value = value[part]
        return value
    if "properties" in node:
        return {
            name: schema_default(f"{key}.{name}")
            for name, child in node["properties"].items()
            if "default" in child or "properties" in child
        }
    return node["default"]


def schema_keys(section: str) -> set[str]:
    node = SCHEMA
    for part in section.split("."):
        node = node["properties"][part]
    return {f"{section}.{name}" for name in node["properties"]}


class Parsed(Exception):
    pass


def command_line_defaults(main) -> dict:
    """The defaults of an entry point's options, read where it parses its arguments."""

    def capture(parser, args=None, namespace=None):
        raise Parsed({a.dest: (a.option_strings[-1:], a.default) for a in parser._actions})

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        main([])
    except Parsed as parsed:
        return parsed.args[0]
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{main.__module__}.main parsed no arguments")


def keyword_defaults(function) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def field_defaults(cls) -> dict:
    return dataclasses.asdict(cls())


STAGE_KEYS = {"seed": "seed", "template": "prompt.template"}  # a stage reads these elsewhere
VIDEO_KEYS = ("backend", "fps", "max_frames", "min_pixels", "max_pixels", "cache")


def library_defaults() -> list[tuple[str, str, object]]:
    """(schema key, where the library sets it, the library's default), for every setting
    that both sides give a default."""
    rows = []
    for stage, module in (("stage1", train_perception), ("stage2", train_reranker)):
        for key, value in module.DEFAULTS.items():
            if key in ("video", "losses"):  # {}: VideoSettings' and LossWeights' defaults
                assert value == {}, f"{stage} DEFAULTS[{key!r}]"
                continue
            rows.append((STAGE_KEYS.get(key, f"{stage}.{key}"), f"{stage} DEFAULTS.{key}", value))
    losses = field_defaults(LossWeights)
    rows += [(f"stage2.losses.{k}", f"LossWeights.{k}", v) for k, v in losses.items()]
    rows += [
        (f"video.{k}", f"VideoSettings.{k}", v)
        for k, v in field_defaults(VideoSettings).items()
        if f"VideoSettings.{k}" not in LIBRARY_ONLY
    ]
    rows += options(
        captions.main,
        {
            "prompt": "captions.prompt",
            "max_new_tokens": "captions.max_new_tokens",
            "batch_size": "captions.batch_size",
            "device": "rerank.device",  # the captions rule runs on the rerank device
            "dtype": "rerank.dtype",
            **{k: f"video.{k}" for k in VIDEO_KEYS},
        },
    )
    rows += options(
        rerank.main,
        {
            "batch_size": "rerank.batch_size",
            "device": "rerank.device",
            "dtype": "rerank.dtype",
            **{k: f"video.{k}" for k in VIDEO_KEYS},
        },
    )
    _, per_pair = command_line_defaults(rerank.main)["per_pair"]
    rows.append(("rerank.shared_prefix", "rankvideo.rerank without --per-pair", not per_pair))
    teacher = ("answer_words", "max_reasoning_tokens", "batch_size", "device", "dtype")
    rows += options(
        generate_reasoning.main,
        {"topk": "teacher.topk", **{k: f"teacher.{k}" for k in teacher}},
    )
    rows += options(
        bench.main,
        {
            **{k: f"bench.{k}" for k in ("frames", "queries_per_video", "size", "videos")},
            "template": "prompt.template",
            "device": "rerank.device",
            "dtype": "rerank.dtype",
        },
    )
    tests = ("metric", "alpha", "resamples", "seed")
    rows += options(significance.main, {k: f"evaluate.significance.{k}" for k in tests})
    for module in (evaluate, depth):
        rows += options(
            module.main, {"depth": "rerank.depth", "score_field": "evaluate.score_field"}
        )
    rows += options(demo_data.main, {"output": "data.archive", "seed": "seed"})
    rows += arguments(
        ReasoningTeacher,
        {"instruction": "teacher.instructions.default"}
        | {k: f"teacher.{k}" for k in ("max_answer_tokens", "max_caption_tokens")}
        | {k: f"teacher.{k}" for k in ("max_asr_tokens", *teacher)},
    )
    rows += arguments(
        Captioner,
        {
            "prompt": "captions.prompt",
            "max_new_tokens": "captions.max_new_tokens",
            "batch_size": "captions.batch_size",
        },
    )
    scoring = ("batch_size", "device", "dtype", "shared_prefix")
    rows += arguments(VLMReranker, {k: f"rerank.{k}" for k in scoring})
    rows += arguments(significance.run, {k: f"evaluate.significance.{k}" for k in tests})
    rows += arguments(evaluate.evaluate, {"score_field": "evaluate.score_field"})
    rows += arguments(depth.depth_report, {"score_field": "evaluate.score_field"})
    elsewhere_keys = {"template": "prompt.template", "vllm": "vllm"}
    rows += [
        (elsewhere_keys.get(k, f"bench.{k}"), f"BenchSettings.{k}", v)
        for k, v in field_defaults(bench.BenchSettings).items()
        if k not in ("device", "dtype")
    ]
    rows += [(f"vllm.{k}", f"VLLM_DEFAULTS.{k}", v) for k, v in VLLM_DEFAULTS.items()]
    for main, step in ((captions.main, "captions"), (rerank.main, "rerank")):
        rows += options(main, {"engine": f"{step}.engine"})
    rows += options(generate_reasoning.main, {"engine": "teacher.engine"})
    rows += options(bench.main, {"engines": "bench.engines", "vllm_python": "vllm.python"})
    demo = field_defaults(demo_data.DemoSettings)
    rows += [(f"demo.{k}", f"DemoSettings.{k}", demo[k]) for k in schema_default("demo")]
    rows.append(("seed", "DemoSettings.seed", demo["seed"]))
    return rows


def options(main, keys: dict) -> list:
    """Rows of an entry point's options, named by the option: `rankvideo.rerank --fps`."""
    found = command_line_defaults(main)
    return [
        (key, " ".join([main.__module__, *found[dest][0]]), found[dest][1])
        for dest, key in keys.items()
    ]


def arguments(function, keys: dict) -> list:
    found = keyword_defaults(function)
    return [(key, f"{function.__qualname__}({name}=)", found[name]) for name, key in keys.items()]


def plain(value):
    """Tuples as lists and ints as floats where the schema's YAML and Python differ."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


ROWS = library_defaults()


@pytest.mark.parametrize("key, where, value", ROWS, ids=[f"{k} ~ {w}" for k, w, _ in ROWS])
def test_library_and_schema_defaults_agree(key, where, value):
    expected = schema_default(key)
    if (key, where) in DIFFERENT:
        assert plain(value) != plain(expected), f"{where} now agrees: drop it from DIFFERENT"
    else:
        assert plain(value) == plain(expected), f"{where} = {value!r}, schema {key} = {expected!r}"


def test_every_difference_is_still_compared():
    assert set(DIFFERENT) <= {(key, where) for key, where, _ in ROWS}


SECTIONS = ("stage1", "stage2", "stage2.losses", "video")


@pytest.mark.parametrize("section", SECTIONS)
def test_every_schema_key_has_its_library_default(section):
    """The training stages, the losses and the video settings: no key on one side only."""
    compared = {key for key, _, _ in ROWS}
    missing = schema_keys(section) - compared - set(SCHEMA_ONLY) - set(SECTIONS)
    assert not missing, f"schema keys without a library default: {sorted(missing)}"
    if section in ("stage1", "stage2"):
        module = train_perception if section == "stage1" else train_reranker
        unknown = {
            key
            for key in module.DEFAULTS
            if key not in ("video", "losses", *STAGE_KEYS)
            and f"{section}.{key}" not in schema_keys(section)
        }
        assert not unknown, f"{section} DEFAULTS keys the schema lacks: {sorted(unknown)}"
