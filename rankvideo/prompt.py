"""The one prompt of the reranker, shared by inference and training.

The video comes before the query, so the prefix (system text + video) is the
same for every candidate query of a video. The answer slot is the position
right after the prompt: the score reads the next-token distribution there.
"""

from __future__ import annotations

VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"

SYSTEM = (
    "You judge whether a video is relevant to a search query. Answer with a single word: yes or no."
)
QUESTION = "Is this video relevant to the query? Answer yes or no."

TEMPLATES = {
    # Qwen's chat format, as an instruction-tuned Qwen-VL model expects.
    "chat": (
        "<|im_start|>system\n{system}<|im_end|>\n"
        "<|im_start|>user\n{video}Query: {query}\n{question}<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    # The video, then the query; no chat tokens (what a tiny model learns from fastest).
    "short": "{video}{query}",
}


def build_prompt(query: str, template: str = "chat") -> str:
    """The prompt text for one (query, video) pair; the processor expands the video span."""
    if template not in TEMPLATES:
        raise ValueError(f"prompt template {template!r}: use one of {sorted(TEMPLATES)}")
    query = " ".join(query.split())
    if not query:
        raise ValueError("empty query")
    return TEMPLATES[template].format(system=SYSTEM, video=VIDEO, query=query, question=QUESTION)


def split_prompt(query: str, template: str = "chat") -> tuple[str, str]:
    """(prefix, suffix) of the prompt: everything up to the video span's end, and the rest.

    The prefix is the same for every query, so one video's prefix is encoded once.
    """
    prompt = build_prompt(query, template)
    cut = prompt.index(VIDEO) + len(VIDEO)
    return prompt[:cut], prompt[cut:]
