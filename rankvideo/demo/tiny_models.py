"""Tiny, randomly initialised models of the real architectures, built offline.

The demo cannot download weights, so for model names starting with `tiny-` the
workflow builds a `Qwen3VLForConditionalGeneration` (the reranker VLM) and a
`Qwen3ForCausalLM` (the text teacher) with the real Qwen tokenizer and special
tokens, and saves them with `save_pretrained`. Every later step loads them with
`from_pretrained(folder)`, exactly as it would load `Qwen/Qwen3-VL-8B-Instruct`.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
from tokenizers import AddedToken

from rankvideo.demo.tokenizer import FIRST_SPECIAL_ID, SPECIAL_TOKENS, vocab_and_merges

log = logging.getLogger(__name__)

VOCAB_SIZE = 151936  # the real Qwen3 embedding size (151,669 tokens padded)

# Qwen's chat format with video/image parts, for users who call apply_chat_template.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer():
    """The real Qwen3 tokenizer (151,643 BPE tokens + 26 special tokens)."""
    from transformers import Qwen2Tokenizer

    vocab, merges = vocab_and_merges()
    for offset, token in enumerate(SPECIAL_TOKENS):
        vocab[token] = FIRST_SPECIAL_ID + offset
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        padding_side="left",  # scoring and generation read the last column
    )
    tokenizer.add_special_tokens(
        {
            "additional_special_tokens": [
                AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS
            ]
        }
    )
    return tokenizer


def _head_dim(spec: dict) -> int:
    return spec.get("head_dim", spec["hidden_size"] // spec["num_heads"])


def _check(spec: dict) -> None:
    head_dim = _head_dim(spec)
    if sum(spec["mrope_section"]) != head_dim // 2:
        raise ValueError(
            f"mrope_section {spec['mrope_section']} must sum to head_dim/2 = {head_dim // 2}"
        )
    if any(i >= spec["vision_depth"] for i in spec["deepstack_indexes"]):
        raise ValueError(
            f"deepstack_indexes {spec['deepstack_indexes']} must be below vision_depth "
            f"{spec['vision_depth']}"
        )


def _decoder(spec: dict) -> dict:
    """Decoder settings shared by both architectures: full vocabulary, tied embedding.

    The optional keys (intermediate_size, kv_heads, head_dim, tie_embeddings)
    let a spec give a released model's exact shapes (`bench.QWEN3_VL_8B`).
    """
    return dict(
        vocab_size=VOCAB_SIZE,
        hidden_size=spec["hidden_size"],
        intermediate_size=spec.get("intermediate_size", spec["hidden_size"] * 2),
        num_hidden_layers=spec["layers"],
        num_attention_heads=spec["num_heads"],
        num_key_value_heads=spec.get("kv_heads", max(1, spec["num_heads"] // 2)),
        head_dim=_head_dim(spec),
        tie_word_embeddings=spec.get("tie_embeddings", True),
        initializer_range=spec.get("init_scale", 0.02),
    )


def _save(model, saver, output_dir, what: str) -> Path:
    output_dir = Path(output_dir)
    # as the released Qwen3 and Qwen3-VL checkpoints' generation_config.json: generation
    # stops at the end of turn (without it, a caption ran on past its last token)
    end_of_turn, end_of_text = FIRST_SPECIAL_ID + 2, FIRST_SPECIAL_ID
    model.generation_config.eos_token_id = [end_of_turn, end_of_text]
    model.generation_config.pad_token_id = end_of_text
    model.generation_config.bos_token_id = end_of_text
    model.save_pretrained(output_dir)
    saver.save_pretrained(output_dir)
    n = sum(p.numel() for p in model.parameters())
    log.info("built %s, random weights (%.1fM parameters), in %s", what, n / 1e6, output_dir)
    return output_dir


def build_vlm(output_dir, spec: dict, seed: int = 0, device: str = "cpu", dtype=None) -> Path:
    """A tiny Qwen3-VL with processor, saved where `from_pretrained` finds it.

    `device` and `dtype` are for full-size shapes: built on a GPU in bfloat16, a
    random 8B model takes seconds instead of minutes of CPU initialisation.
    """
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    _check(spec)
    config = Qwen3VLConfig(
        text_config=dict(
            **_decoder(spec),
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": list(spec["mrope_section"]),
                "mrope_interleaved": True,
            },
        ),
        vision_config=dict(
            depth=spec["vision_depth"],
            hidden_size=spec["vision_width"],
            intermediate_size=spec.get("vision_intermediate", spec["vision_width"] * 2),
            num_heads=spec.get("vision_heads", max(1, spec["vision_width"] // 16)),
            patch_size=16,
            temporal_patch_size=2,
            spatial_merge_size=2,
            out_hidden_size=spec["hidden_size"],
            deepstack_visual_indexes=list(spec["deepstack_indexes"]),
            initializer_range=spec.get("init_scale", 0.02),
        ),
        tie_word_embeddings=spec.get("tie_embeddings", True),
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype).eval()
    tokenizer = build_tokenizer()
    pixels = {"shortest_edge": spec["min_pixels"], "longest_edge": spec["max_pixels"]}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            patch_size=16, temporal_patch_size=2, merge_size=2, size=pixels
        ),
        video_processor=Qwen3VLVideoProcessor(
            patch_size=16, temporal_patch_size=2, merge_size=2, size=pixels
        ),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    return _save(model, processor, output_dir, "Qwen3-VL")


def build_text_lm(output_dir, spec: dict, seed: int = 0) -> Path:
    """A tiny Qwen3 causal LM (the text teacher) with the real tokenizer."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(Qwen3Config(**_decoder(spec))).eval()
    return _save(model, build_tokenizer(), output_dir, "Qwen3")


def build(output_dir, spec: dict, seed: int = 0) -> Path:
    """Build the tiny model that `spec['architecture']` names (qwen3_vl or qwen3)."""
    builders = {"qwen3_vl": build_vlm, "qwen3": build_text_lm}
    if spec["architecture"] not in builders:
        raise ValueError(
            f"unknown tiny architecture {spec['architecture']!r}; use {list(builders)}"
        )
    return builders[spec["architecture"]](output_dir, spec, seed)


def copy_model(source_dir, output_dir) -> Path:
    """A copy of the tiny model in `source_dir` (weights, tokenizer, processor), for a
    model that starts where another one's pretraining ended."""
    output_dir = Path(output_dir)
    shutil.copytree(source_dir, output_dir, dirs_exist_ok=True)
    log.info("copied the tiny model %s to %s", source_dir, output_dir)
    return output_dir
