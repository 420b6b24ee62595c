"""Prompt profiles: how a reranker is asked about a (query, video) pair and where its
answer is read. One module serves training and inference.

A profile fixes the message order (video first or query first), the texts, Qwen's
chat format or raw text, an assistant prefix written before the answer slot, the
answer tokens and the frame and pixel defaults. The score is read at the position
right after the prompt (after the assistant prefix).

- `chat`, `short`: this project's own. The video comes before the query, so the
  prefix (system text + video) is the same for every candidate query of a video.
- `sandwich`: this project's own, raw text: the query, the video, the query again.
  Before the video, each visual token can check what it shows against the query's
  words; after it, the answer slot follows the query's last word. The demo's 2-layer
  VLM learns colour, shape and motion with it, with `short` only the last word's
  (docs/demo.md). One pass per pair: the query comes first.
- `rankvideo-release`: the released RANKVIDEO inference (rankvideo/inference.py of
  the release): query text first, then the video; every vocabulary token whose text,
  stripped and lower-cased, is "yes" or "no".
- `rankvideo-trained`: the prompt the released weights were trained with
  (rankvideo/train_reranker.py): video first, scored after `<answer>` on the single
  tokens "yes" and "no".
- `qwen3-vl-reranker`: Qwen3-VL-Reranker (Qwen3-VL-Embedding's
  src/models/qwen3_vl_reranker.py): instruction and query, then the video as the
  document; the single tokens "yes" and "no" at the last position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"
PIXELS = 32 * 32  # one visual token of Qwen3-VL (16-pixel patches, merged 2 x 2)

SYSTEM = (
    "You judge whether a video is relevant to a search query. Answer with a single word: yes or no."
)
QUESTION = "Is this video relevant to the query? Answer yes or no."


@dataclass(frozen=True)
class Profile:
    """How one kind of reranker is prompted and read (see the module docstring)."""

    name: str
    user: tuple[str, ...]  # parts of the user turn: VIDEO, or text with {query}/{instruction}
    system: str | None = None
    chat: bool = True  # Qwen's chat format; False: the parts alone
    assistant_prefix: str = ""  # written after the assistant header; the slot follows it
    answers: str = "spellings"  # spellings | decoded | exact (see scoring.answer_ids)
    answer_words: tuple[str, str] = ("yes", "no")
    instruction: str = ""
    video: dict = field(default_factory=dict)  # frame and pixel defaults of the profile
    max_length: int | None = None  # longer inputs are cut as the authors cut them

    @property
    def video_first(self) -> bool:
        """The video precedes every query-dependent part: its prefix can be shared."""
        first_query = next(i for i, part in enumerate(self.user) if "{query}" in part)
        return VIDEO in self.user and self.user.index(VIDEO) < first_query


PROFILES = {
    p.name: p
    for p in (
        Profile("chat", (VIDEO, "Query: {query}\n" + QUESTION), system=SYSTEM),
        Profile("short", (VIDEO, "{query}"), chat=False),
        Profile("sandwich", ("{query}", VIDEO, "{query}"), chat=False),
        Profile(
            "rankvideo-release",
            (
                "Query: {query}\nIs the video relevant to the query? "
                "Respond with <answer>yes</answer> or <answer>no</answer>.",
                VIDEO,
            ),
            system=(
                "You are a helpful assistant specialized in video and text understanding. "
                "Given a text query and a video, your task is to determine if the video is "
                "relevant to the query. Respond with <answer>yes</answer> if the video is "
                "relevant, or <answer>no</answer> if it is not. "
            ),
            answers="decoded",
            video={
                "fps": 2.0,
                "max_frames": 32,
                "min_pixels": 128 * PIXELS,
                "max_pixels": 128 * PIXELS,
            },
        ),
        Profile(
            "rankvideo-trained",
            (VIDEO, "Query: {query}\nIs the video relevant? Answer with yes or no."),
            system=(
                "You are a helpful assistant specialized in video and text understanding. "
                "Given a text query and a video, determine if the video is relevant."
            ),
            assistant_prefix="<answer>",
            answers="exact",
            # the release trains at fps 2 and 24 frames with qwen-vl-utils' pixel defaults
            video={
                "fps": 2.0,
                "max_frames": 24,
                "min_pixels": 128 * PIXELS,
                "max_pixels": 768 * PIXELS,
            },
        ),
        Profile(
            "qwen3-vl-reranker",
            ("<Instruct>: {instruction}", "<Query>:", "{query}", "\n<Document>:", VIDEO),
            system=(
                "Judge whether the Document meets the requirements based on the Query and "
                'the Instruct provided. Note that the answer can only be "yes" or "no".'
            ),
            answers="exact",
            instruction="Given a search query, retrieve relevant candidates that answer the query.",
            max_length=10240,
            # a video file is read at fps 1 and at most 64 frames with qwen-vl-utils'
            # per-frame pixel defaults (its total-pixel cap applies to frame lists only)
            video={
                "fps": 1.0,
                "max_frames": 64,
                "min_pixels": 128 * PIXELS,
                "max_pixels": 768 * PIXELS,
            },
        ),
    )
}

# hub ids whose authors score them with a profile of their own
KNOWN_MODELS = {
    "hltcoe/RankVideo": "rankvideo-release",
    "Qwen/Qwen3-VL-Reranker-2B": "qwen3-vl-reranker",
    "Qwen/Qwen3-VL-Reranker-8B": "qwen3-vl-reranker",
}


def kept_positions(ids: list[int], special: set[int], max_length: int) -> list[int]:
    """Qwen3-VL-Reranker's cut of a long input: the last 5 tokens stay; before them every
    special token (the video's included) stays and the other tokens are kept from the
    start while the budget (max_length less the special tokens) lasts."""
    head = len(ids) - 5
    if head <= max_length:
        return list(range(len(ids)))
    budget = max_length - sum(ids[i] in special for i in range(head))
    kept = []
    for i in range(head):
        if ids[i] in special:
            kept.append(i)
        elif budget > 0:
            kept.append(i)
            budget -= 1
    return kept + list(range(head, len(ids)))


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"prompt profile {name!r}: use one of {sorted(PROFILES)}")
    return PROFILES[name]


def build_prompt(query: str, template: str = "chat") -> str:
    """The prompt text of one (query, video) pair, up to the answer slot; the processor
    expands the video span."""
    profile = get_profile(template)
    query = " ".join(query.split())
    if not query:
        raise ValueError("empty query")
    user = "".join(p.format(query=query, instruction=profile.instruction) for p in profile.user)
    if not profile.chat:
        return user + profile.assistant_prefix
    system = f"<|im_start|>system\n{profile.system}<|im_end|>\n" if profile.system else ""
    return (
        f"{system}<|im_start|>user\n{user}<|im_end|>\n"
        f"<|im_start|>assistant\n{profile.assistant_prefix}"
    )


def split_prompt(query: str, template: str = "chat") -> tuple[str, str]:
    """(prefix, suffix) of a video-first prompt: everything up to the video span's end,
    and the rest. The prefix is the same for every query, so one video's prefix is
    encoded once."""
    if not get_profile(template).video_first:
        raise ValueError(f"prompt profile {template!r} puts the query before the video")
    prompt = build_prompt(query, template)
    cut = prompt.index(VIDEO) + len(VIDEO)
    return prompt[:cut], prompt[cut:]
