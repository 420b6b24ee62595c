"""Score many queries against one video with one encoding of the video.

The prompt puts the video before the query, so system text + video (the
prefix, thousands of tokens for a real video) is the same for every candidate
query of a video. We run the vision encoder and the language model over the
prefix once, keep its key/value cache, and score the queries as a batch of
short suffixes attending to that cache.

What makes it exact (scores equal a full forward per pair, see tests):
- rotary positions: Qwen-VL's 3-D positions advance less than one per visual
  token; the model records `rope_deltas` (last prefix position + 1 - P) while
  encoding the prefix. Suffix token j sits at P + rope_deltas + j on all three
  axes, passed explicitly (left out, the model would reuse a stale delta).
- the attention mask covers prefix + suffix, (K, P + L); suffixes are
  left-padded so every row's answer slot is the last column;
- a fresh cache per batch, built from the prefix tensors expanded to K rows
  (a cache object grows in place on every forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass
class Prefix:
    """The encoded prefix of one video: per-layer (keys, values), each (1, heads, P, dim)."""

    key_values: list[tuple[torch.Tensor, torch.Tensor]]
    length: int  # P, prefix tokens
    next_position: int  # rotary position of the first suffix token (all three axes)


def encode_prefix(model, inputs: dict) -> Prefix:
    """Run the model once over a batch-1 prefix (processor outputs with the video)."""
    if inputs["input_ids"].shape[0] != 1:
        raise ValueError("a prefix is one video: batch size must be 1")
    inner = model.model
    if not hasattr(inner, "rope_deltas"):
        raise TypeError(
            f"{type(model).__name__} does not expose rope_deltas: score with shared_prefix off"
        )
    inner.rope_deltas = None  # computed afresh from this prefix, never another video's
    out = model(**inputs, use_cache=True, logits_to_keep=1)
    length = inputs["input_ids"].shape[1]
    delta = inner.rope_deltas
    if delta is None:
        raise RuntimeError("the model did not record rope_deltas for the prefix")
    key_values = [(keys, values) for keys, values, *_ in out.past_key_values]
    return Prefix(key_values, length, length + int(delta.reshape(-1)[0]))


def suffix_logits(model, prefix: Prefix, input_ids, attention_mask) -> torch.Tensor:
    """Next-token logits (K, V) after each of K left-padded suffixes of `prefix`."""
    rows, width = input_ids.shape
    device = input_ids.device
    # a real token's position counts only the real tokens before it in its row
    offsets = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    positions = (prefix.next_position + offsets).unsqueeze(0).expand(3, rows, width)
    full_mask = torch.cat(
        [attention_mask.new_ones(rows, prefix.length), attention_mask.to(device)], dim=1
    )
    cache = DynamicCache(
        ddp_cache_data=[
            (k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in prefix.key_values
        ],
        config=model.config,
    )
    out = model(
        input_ids=input_ids,
        attention_mask=full_mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return out.logits[:, -1, :]
