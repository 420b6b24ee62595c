"""Yes/no relevance scores of (query, video) pairs from a Qwen-VL model.

score = log P(yes) - log P(no) at the answer slot, where P(yes) sums the
probability of every vocabulary token that reads "yes" in any case, with or
without a leading space (likewise "no"). `p_yes = sigmoid(logit_delta)`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import torch

from rankvideo.prompt import build_prompt
from rankvideo.video import VideoSettings, load_video

log = logging.getLogger(__name__)


def spellings(word: str) -> list[str]:
    """Every upper/lower-case spelling of `word`, with and without a leading space."""
    if len(word) > 8:  # 2**len spellings: answer words are short (yes/no, true/false)
        raise ValueError(f"answer word {word!r} is longer than 8 characters")
    cased = {"".join(c) for c in itertools.product(*((ch.lower(), ch.upper()) for ch in word))}
    return sorted(prefix + w for w in cased for prefix in ("", " "))


def answer_token_ids(tokenizer, word: str) -> list[int]:
    """Ids of the single tokens that spell `word` (any case, optional leading space)."""
    ids = set()
    for text in spellings(word):
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1:
            ids.add(encoded[0])
    if not ids:
        raise ValueError(f"no single vocabulary token spells {word!r}")
    return sorted(ids)


def yes_no_scores(
    log_probs: torch.Tensor, yes_ids: Sequence[int], no_ids: Sequence[int]
) -> list[dict]:
    """Per row of next-token log-probabilities (B, V): the four score fields."""
    logprob_yes = torch.logsumexp(log_probs[:, list(yes_ids)], dim=-1)
    logprob_no = torch.logsumexp(log_probs[:, list(no_ids)], dim=-1)
    delta = logprob_yes - logprob_no
    if not torch.isfinite(delta).all():
        raise FloatingPointError("non-finite yes/no log-probabilities")
    return [
        {
            "logprob_yes": float(y),
            "logprob_no": float(n),
            "logit_delta": float(d),
            "p_yes": float(torch.sigmoid(d)),
        }
        for y, n, d in zip(logprob_yes, logprob_no, delta, strict=True)
    ]


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


class VLMReranker:
    """A Qwen-VL model that scores (query, video) pairs by its yes/no answer.

    `model_path` is anything `from_pretrained` takes: a hub id such as
    `Qwen/Qwen3-VL-8B-Instruct` (from the local Hugging Face cache) or a folder.
    """

    def __init__(
        self,
        model_path: str,
        video: VideoSettings | None = None,
        template: str = "chat",
        answer_words: tuple[str, str] = ("yes", "no"),
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
        cache_dir: str | None = None,
    ):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.device = pick_device(device)
        self.processor = AutoProcessor.from_pretrained(model_path, cache_dir=cache_dir)
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"  # the answer slot is the last column
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_path, dtype=pick_dtype(dtype, self.device), cache_dir=cache_dir
        ).to(self.device)
        self.model.eval()
        patch = getattr(self.processor.video_processor, "patch_size", 16)
        self.video = VideoSettings(**{**(video or VideoSettings()).__dict__, "patch_size": patch})
        # frames arrive sized by qwen-vl-utils (do_resize=False): the processor's own
        # per-frame pixel cap is moot, and naming it silences a deprecation warning
        capped = hasattr(type(self.processor.video_processor), "cap_pixels_per_frame")
        self.video_kwargs = {"cap_pixels_per_frame": False} if capped else {}
        self.template = template
        self.batch_size = batch_size
        self.yes_ids = answer_token_ids(self.tokenizer, answer_words[0])
        self.no_ids = answer_token_ids(self.tokenizer, answer_words[1])
        log.info(
            "loaded %s on %s; yes tokens %s, no tokens %s",
            model_path, self.device, self.yes_ids, self.no_ids,
        )  # fmt: skip

    def inputs(self, queries: Sequence[str], videos: Sequence[tuple]) -> dict:
        """Processor outputs for a batch of (query, decoded video) pairs, left-padded."""
        frames, metadata = zip(*videos, strict=True)
        return self.processor(
            text=[build_prompt(q, self.template) for q in queries],
            videos=list(frames),
            video_metadata=list(metadata),
            do_resize=False,
            do_sample_frames=False,
            padding=True,
            **self.video_kwargs,
            return_tensors="pt",
        ).to(self.device)

    @torch.inference_mode()
    def score_decoded(self, queries: Sequence[str], videos: Sequence[tuple]) -> list[dict]:
        """Scores for pairs whose videos are already decoded (see `load_video`)."""
        out = self.model(**self.inputs(queries, videos), logits_to_keep=1, use_cache=False)
        log_probs = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        return yes_no_scores(log_probs, self.yes_ids, self.no_ids)

    def score_batch(
        self, queries: Sequence[str], video_paths: Sequence[str], batch_size: int | None = None
    ) -> list[dict]:
        """One dict per pair: `p_yes`, `logit_delta`, `logprob_yes`, `logprob_no`."""
        if len(queries) != len(video_paths):
            raise ValueError(f"{len(queries)} queries but {len(video_paths)} video paths")
        size = batch_size or self.batch_size
        decoded: dict[str, tuple] = {}
        scores = []
        for start in range(0, len(queries), size):
            paths = video_paths[start : start + size]
            for path in paths:
                if path not in decoded:
                    decoded[path] = load_video(path, self.video)
            scores += self.score_decoded(queries[start : start + size], [decoded[p] for p in paths])
        return scores
