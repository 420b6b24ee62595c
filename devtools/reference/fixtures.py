"""Reference fixtures from the authors' stack: what Qwen3-VL is handed and answers.

Runs in the reference environment (transformers 4.57.1, qwen-vl-utils 0.0.14, decord;
`devtools/reference/build.sh` makes it and calls this). It imports nothing of
`rankvideo`: each case is built the way the authors' code builds it (messages with a
video element, `apply_chat_template`, `qwen_vl_utils.process_vision_info`, the
processor with `do_resize=False`), so the project is compared with an independent
pipeline, not with itself.

    .venv-ref/bin/python devtools/reference/fixtures.py MODEL_DIR CLIP_DIR OUT_DIR

MODEL_DIR is the demo's tiny Qwen3-VL as the workflow saves it (transformers 5.x
files); it is rewritten here in the layout the released checkpoints ship (config with
`rope_scaling`, a fast tokenizer, the processor's settings) and loaded with 4.57.1.
For every clip and every case, OUT_DIR/<clip>.<case>.json holds the input ids,
`video_grid_thw`, the pixel values (shape, sha256 of the float32 bytes, sum, first
values), the multimodal-rope position ids the language model receives and the tiny
model's yes/no log-probabilities in float32 (or, for captions, its greedy tokens).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import sys
import tempfile
from pathlib import Path

os.environ["FORCE_QWENVL_VIDEO_READER"] = "decord"  # the release's qwen-vl-utils[decord]

import torch  # noqa: E402
import transformers  # noqa: E402
from qwen_vl_utils import process_vision_info  # noqa: E402
from transformers import (  # noqa: E402
    Qwen2TokenizerFast,
    Qwen2VLImageProcessorFast,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

QUERY = "Protestas en Santiago, Chile: a crowd marching at night"
CAPTION = "A red circle moves to the left."
TOKENS = 128 * 32 * 32  # 128 visual tokens of Qwen3-VL

# the texts of each prompt, as the public code writes them
OURS_SYSTEM = (
    "You judge whether a video is relevant to a search query. Answer with a single word: yes or no."
)
OURS_QUESTION = "Is this video relevant to the query? Answer yes or no."
RELEASE_SYSTEM = (
    "You are a helpful assistant specialized in video and text understanding. "
    "Given a text query and a video, your task is to determine if the video is relevant "
    "to the query. Respond with <answer>yes</answer> if the video is relevant, or "
    "<answer>no</answer> if it is not. "
)
TRAINED_SYSTEM = (
    "You are a helpful assistant specialized in video and text understanding. "
    "Given a text query and a video, determine if the video is relevant."
)
RERANKER_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)
RERANKER_INSTRUCTION = "Given a search query, retrieve relevant candidates that answer the query."
CAPTION_PROMPT = (
    "Describe this video in 3 to 6 concise, factual sentences: the events, people, "
    "actions, objects, places and any readable text. Do not speculate."
)


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def cases(clip: str) -> dict:
    """{case: (messages, chat, cut_after, answers)} for one clip, each as its code has it.

    The demo's own profiles (`chat`, `short`, captions) take the demo's frames: 2 fps,
    at most 8 frames, 64 x 64 pixels.
    """
    demo = {"video": clip, "fps": 2.0, "max_frames": 8, "min_pixels": 4096, "max_pixels": 4096}
    release = {
        "video": clip,
        "fps": 2.0,
        "max_frames": 32,
        "min_pixels": TOKENS,
        "max_pixels": TOKENS,
        "total_pixels": 32 * TOKENS,
    }
    trained = {"video": clip, "fps": 2.0, "max_frames": 24}  # qwen-vl-utils' pixel defaults
    reranker = {"video": clip, "fps": 1.0, "max_frames": 64}
    video = lambda settings: {"type": "video", **settings}  # noqa: E731
    return {
        "chat": (
            [
                {"role": "system", "content": [text(OURS_SYSTEM)]},
                {
                    "role": "user",
                    "content": [video(demo), text(f"Query: {QUERY}\n{OURS_QUESTION}")],
                },
            ],
            True,
            None,
            "spellings",
        ),
        "short": (
            [{"role": "user", "content": [video(demo), text(QUERY)]}],
            False,
            None,
            "spellings",
        ),
        "rankvideo-release": (
            [
                {"role": "system", "content": [text(RELEASE_SYSTEM)]},
                {
                    "role": "user",
                    "content": [
                        text(
                            f"Query: {QUERY}\nIs the video relevant to the query? "
                            "Respond with <answer>yes</answer> or <answer>no</answer>."
                        ),
                        video(release),
                    ],
                },
            ],
            True,
            None,
            "decoded",
        ),
        "rankvideo-trained": (
            [
                {"role": "system", "content": [text(TRAINED_SYSTEM)]},
                {
                    "role": "user",
                    "content": [
                        video(trained),
                        text(f"Query: {QUERY}\nIs the video relevant? Answer with yes or no."),
                    ],
                },
                {"role": "assistant", "content": [text("<answer>yes</answer>")]},
            ],
            True,
            "<answer>",
            "exact",
        ),
        "qwen3-vl-reranker": (
            [
                {"role": "system", "content": [text(RERANKER_SYSTEM)]},
                {
                    "role": "user",
                    "content": [
                        text("<Instruct>: " + RERANKER_INSTRUCTION),
                        text("<Query>:"),
                        text(QUERY),
                        text("\n<Document>:"),
                        video(reranker),
                    ],
                },
            ],
            True,
            None,
            "exact",
        ),
        "captions": (
            [{"role": "user", "content": [video(demo), text(CAPTION_PROMPT)]}],
            True,
            None,
            "generate",
        ),
        "caption-target": (
            [{"role": "user", "content": [video(demo), text(CAPTION_PROMPT)]}],
            True,
            f"<think>\n{CAPTION}\n</think><|im_end|>",
            "none",
        ),
    }


def released_layout(model_dir: Path, folder: Path) -> Path:
    """The tiny model's files in the layout a released Qwen3-VL checkpoint ships."""
    config = json.loads((model_dir / "config.json").read_text())
    text_config = config["text_config"]
    rope = text_config.pop("rope_parameters")
    text_config["rope_theta"] = rope["rope_theta"]
    text_config["rope_scaling"] = {
        "rope_type": rope["rope_type"],
        "mrope_section": rope["mrope_section"],
        "mrope_interleaved": rope["mrope_interleaved"],
    }
    config["vision_config"].pop("rope_parameters", None)
    config["torch_dtype"] = config.pop("dtype")
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "model.safetensors").symlink_to((model_dir / "model.safetensors").resolve())
    settings = json.loads((model_dir / "processor_config.json").read_text())
    template = (model_dir / "chat_template.jinja").read_text()
    tokenizer = Qwen2TokenizerFast(
        tokenizer_file=str(model_dir / "tokenizer.json"),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    keys = ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")
    image = Qwen2VLImageProcessorFast(**{k: settings["image_processor"][k] for k in keys})
    video = Qwen3VLVideoProcessor(**{k: settings["video_processor"][k] for k in keys})
    processor = Qwen3VLProcessor(
        image_processor=image, tokenizer=tokenizer, video_processor=video, chat_template=template
    )
    processor.save_pretrained(folder)
    return folder


def answer_ids(tokenizer, mode: str) -> tuple[list[int], list[int]]:
    def spellings(word):
        ids = set()
        for cased in itertools.product(*((c.lower(), c.upper()) for c in word)):
            for prefix in ("", " "):
                encoded = tokenizer.encode(prefix + "".join(cased), add_special_tokens=False)
                if len(encoded) == 1:
                    ids.add(encoded[0])
        return sorted(ids)

    if mode == "spellings":
        return spellings("yes"), spellings("no")
    if mode == "decoded":  # the release's inference: every token whose text reads yes / no
        texts = [tokenizer.decode([i]) for i in range(tokenizer.vocab_size)]
        return (
            [i for i, t in enumerate(texts) if t.strip().lower() == "yes"],
            [i for i, t in enumerate(texts) if t.strip().lower() == "no"],
        )
    return (
        [tokenizer.encode("yes", add_special_tokens=False)[0]],
        [tokenizer.encode("no", add_special_tokens=False)[0]],
    )


def model_inputs(processor, messages, chat: bool, cut_after: str | None):
    if chat:
        rendered = processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=messages[-1]["role"] == "user"
        )
    else:  # the parts alone: the video span as the template writes it, then the text
        rendered = "<|vision_start|><|video_pad|><|vision_end|>" + messages[0]["content"][1]["text"]
    if cut_after == "<answer>":  # a training conversation read after `<answer>`
        rendered = rendered[: rendered.rindex(cut_after) + len(cut_after)]
    elif cut_after:  # a target appended to the prompt (stage 1)
        rendered += cut_after
    images, videos, video_kwargs = process_vision_info(
        messages, image_patch_size=16, return_video_kwargs=True, return_video_metadata=True
    )
    videos, metadata = zip(*videos, strict=True)
    return processor(
        text=[rendered],
        images=images,
        videos=list(videos),
        video_metadata=list(metadata),
        do_resize=False,
        return_tensors="pt",
        **video_kwargs,
    )


def pixel_summary(pixels: torch.Tensor) -> dict:
    flat = pixels.detach().to(torch.float32).contiguous()
    return {
        "shape": list(flat.shape),
        "sha256": hashlib.sha256(flat.numpy().tobytes()).hexdigest(),
        "sum": float(flat.double().sum()),
        "head": [float(x) for x in flat.flatten()[:8]],
    }


@torch.inference_mode()
def run_case(model, processor, messages, chat, cut_after, answers) -> dict:
    inputs = model_inputs(processor, messages, chat, cut_after)
    positions = []
    hook = model.model.language_model.register_forward_pre_hook(
        lambda _, args, kwargs: positions.append(kwargs["position_ids"].clone()),
        with_kwargs=True,
    )
    try:
        if answers == "generate":
            first = torch.log_softmax(model(**inputs).logits[0, -1].float(), dim=-1)
            positions.clear()
            generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
            top = first.topk(5)
            result = {
                "generated": generated[0, inputs["input_ids"].shape[1] :].tolist(),
                "first_step_top_ids": top.indices.tolist(),
                "first_step_top_logprobs": top.values.tolist(),
            }
        else:
            logits = model(**inputs).logits[0, -1].float()
            result = {}
            if answers != "none":
                yes, no = answer_ids(processor.tokenizer, answers)
                log_probs = torch.log_softmax(logits, dim=-1)
                logprob_yes = float(torch.logsumexp(log_probs[yes], dim=0))
                logprob_no = float(torch.logsumexp(log_probs[no], dim=0))
                result = {
                    "yes_ids": yes,
                    "no_ids": no,
                    "logprob_yes": logprob_yes,
                    "logprob_no": logprob_no,
                    "logit_delta": logprob_yes - logprob_no,
                    "p_yes": 1 / (1 + math.exp(-(logprob_yes - logprob_no))),
                }
    finally:
        hook.remove()
    rope = positions[0]
    rope = rope[-3:] if rope.shape[0] == 4 else rope  # (3, 1, L): temporal, height, width
    return {
        "input_ids": inputs["input_ids"][0].tolist(),
        "video_grid_thw": inputs["video_grid_thw"].tolist(),
        "pixel_values_videos": pixel_summary(inputs["pixel_values_videos"]),
        "position_ids": rope[:, 0].tolist(),
        **result,
    }


def main(model_dir: str, clip_dir: str, out_dir: str) -> None:
    torch.manual_seed(0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = released_layout(Path(model_dir), Path(scratch))
        processor = Qwen3VLProcessor.from_pretrained(folder)
        model = Qwen3VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
        model.eval()
        weights = hashlib.sha256((Path(model_dir) / "model.safetensors").read_bytes())
        stack = {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "model_sha256": weights.hexdigest(),
        }
        for clip in sorted(Path(clip_dir).glob("*.mp4")):
            for case, spec in cases(str(clip.resolve())).items():
                record = {"clip": clip.name, "case": case, "query": QUERY, **stack}
                record |= run_case(model, processor, *spec)
                target = out / f"{clip.stem}.{case}.json"
                target.write_text(json.dumps(record, indent=1) + "\n")
                print(f"{target}: {len(record['input_ids'])} ids", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
