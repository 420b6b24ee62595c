"""Yes/no relevance scores of (query, video) pairs from a Qwen-VL model.

score = log P(yes) - log P(no) at the answer slot, where P(yes) sums the
probability of every vocabulary token that reads "yes" in any case, with or
without a leading space (likewise "no"). `p_yes = sigmoid(logit_delta)`.

Two other readings sit beside it in the records when asked for or when a profile's
authors read differently (`rankvideo.pairs` counts them):

- `scores="served"`: the RANKVIDEO release's served reading (`served_scores`); the
  exact values go to `exact_*` fields;
- the qwen3-vl-reranker profile: Qwen3-VL-Reranker's own output, sigmoid of the
  score in bfloat16 (`authors_p_yes`), and, as for every profile that cuts long
  inputs, what the cut removed (`cut_tokens`, `query_lost`).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Sequence

import torch

from rankvideo.models import load_vlm, model_identity, video_inputs, video_span
from rankvideo.pairs import (
    AUTHORS_FIELD,
    CUT_FIELDS,
    EXACT_FIELDS,
    SCORE_FIELDS,
    SERVED_FIELDS,
    SERVED_TOP,
)
from rankvideo.profile import resolve as resolve_profile
from rankvideo.prompt import VIDEO, build_prompt, get_profile, kept_positions, split_prompt
from rankvideo.shared_prefix import encode_prefix, suffix_logits
from rankvideo.video import VideoSettings, for_processor, load_video

log = logging.getLogger(__name__)

READINGS = ("exact", "served")  # how the answer slot's log-probabilities become a score
# profiles whose authors report sigmoid(score) in bfloat16 (Qwen3-VL-Reranker)
BF16_SIGMOID = ("qwen3-vl-reranker",)


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


def answer_ids(tokenizer, word: str, mode: str = "spellings") -> list[int]:
    """The vocabulary ids that count as answering `word`, as a prompt profile reads them.

    spellings: single tokens of any case, with or without a leading space (this
    project's); decoded: every regular token whose text, stripped and lower-cased, is
    the word (the released RANKVIDEO inference); exact: the one token of the word
    itself (the release's training, Qwen3-VL-Reranker).
    """
    if mode == "spellings":
        return answer_token_ids(tokenizer, word)
    if mode == "decoded":
        texts = tokenizer.batch_decode([[i] for i in range(tokenizer.vocab_size)])
        ids = [i for i, text in enumerate(texts) if text.strip().lower() == word.lower()]
        if not ids:
            raise ValueError(f"no vocabulary token reads {word!r}")
        return ids
    if mode == "exact":
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) != 1:
            raise ValueError(f"answer word {word!r} is {len(encoded)} tokens, not one")
        return encoded
    raise ValueError(f"answer token mode {mode!r}: use spellings, decoded or exact")


def answer_logprobs(logits: torch.Tensor, yes_ids: Sequence[int], no_ids: Sequence[int]):
    """(log P(yes), log P(no)) per row of answer-slot logits (B, V); differentiable.

    Inference reads the score through this function; stage 2 through
    `delta_from_answer_rows`, which gives the same difference.
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    yes = torch.logsumexp(log_probs[:, list(yes_ids)], dim=-1)
    return yes, torch.logsumexp(log_probs[:, list(no_ids)], dim=-1)


def delta_from_answer_rows(logits: torch.Tensor, yes_count: int) -> torch.Tensor:
    """log P(yes) - log P(no) per row of answer-slot logits over the answer ids only
    (B, n: the yes spellings first, then the no spellings); differentiable.

    The softmax's normaliser is the same for both and cancels, so this equals the
    difference of `answer_logprobs` without the other logits of the vocabulary
    (stage 2 computes only these rows of the output layer).
    """
    logits = logits.float()
    return torch.logsumexp(logits[:, :yes_count], dim=-1) - torch.logsumexp(
        logits[:, yes_count:], dim=-1
    )


def yes_no_scores(
    logits: torch.Tensor, yes_ids: Sequence[int], no_ids: Sequence[int]
) -> list[dict]:
    """Per row of answer-slot logits (B, V): the four score fields."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return scores_from_logprobs(log_probs[:, [*yes_ids, *no_ids]], len(yes_ids))


def scores_from_logprobs(log_probs: torch.Tensor, yes_count: int) -> list[dict]:
    """The four score fields per row of answer-token log-probabilities over the whole
    vocabulary (B, n: the yes spellings first, then the no spellings); both engines end
    here (vLLM returns these log-probabilities, transformers the logits)."""
    logprob_yes = torch.logsumexp(log_probs[:, :yes_count].float(), dim=-1)
    logprob_no = torch.logsumexp(log_probs[:, yes_count:].float(), dim=-1)
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


def _release_logsumexp(values: list[float]) -> float | None:
    """The release's own log-sum-exp (rankvideo/inference.py), in Python floats."""
    if not values:
        return None
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def served_scores(
    log_probs: torch.Tensor, yes_ids: Sequence[int], no_ids: Sequence[int], top: int = SERVED_TOP
) -> list[dict]:
    """The four score fields as the RANKVIDEO release serves them, per row of
    full-vocabulary log-probabilities (B, V, float32).

    The release asks vLLM for `SamplingParams(max_tokens=1, temperature=0,
    logprobs=512, allowed_token_ids=yes+no)`. vLLM V1 returns the raw log-probabilities
    (log-softmax over the whole vocabulary, before the allowed-ids mask) of the `top`
    most likely tokens and of the sampled one, which at temperature 0 under the mask
    is the most likely answer token (the lowest id on a tie, as argmax takes it). The
    release log-sum-exps the yes and the no tokens that are among them and returns
    0.0 for all four fields when one side has none. Beside them: `served_missing`, the
    answer tokens the reading lacked, and `served_fallback`, whether it returned 0.0.
    """
    allowed = sorted({*yes_ids, *no_ids})
    log_probs = log_probs.float()
    top_ids = torch.topk(log_probs, min(top, log_probs.shape[-1]), dim=-1).indices.tolist()
    sampled = log_probs[:, allowed].argmax(dim=-1).tolist()
    scores = []
    for row, ids, pick in zip(log_probs, top_ids, sampled, strict=True):
        returned = set(ids) | {allowed[pick]}
        values = row.tolist()
        yes = _release_logsumexp([values[t] for t in yes_ids if t in returned])
        no = _release_logsumexp([values[t] for t in no_ids if t in returned])
        missing = sum(t not in returned for t in allowed)
        if yes is None or no is None:
            fields = dict.fromkeys(SCORE_FIELDS, 0.0)
        else:
            delta = float(yes - no)
            try:
                p_yes = 1.0 / (1.0 + math.exp(-delta))
            except OverflowError:  # the release's expression overflows below -709
                p_yes = 0.0
            fields = {"logprob_yes": yes, "logprob_no": no, "logit_delta": delta, "p_yes": p_yes}
        scores.append(
            fields | {"served_missing": missing, "served_fallback": yes is None or no is None}
        )
    return scores


def bf16_sigmoid(deltas: Sequence[float]) -> list[float]:
    """sigmoid(score) computed in bfloat16, as Qwen3-VL-Reranker returns it in the
    model's dtype: it saturates near 1 (0.996, then 1.0) and ties top candidates."""
    return torch.sigmoid(torch.tensor(list(deltas), dtype=torch.bfloat16)).float().tolist()


class VLMReranker:
    """A Qwen-VL model that scores (query, video) pairs by its yes/no answer.

    `model_path` is anything `from_pretrained` takes: a hub id such as
    `Qwen/Qwen3-VL-8B-Instruct` (from the local Hugging Face cache) or a folder.
    `profile` names a prompt profile (`rankvideo.prompt.PROFILES`). A model trained
    here is scored with the profile, answer words and frame settings it was trained
    with, a known checkpoint with its authors' profile (`rankvideo.profile`);
    `profile`, `answer_words` and the sampling keys of `video` left unset take those.
    With `shared_prefix` (the default) a video-first profile encodes a video's prefix
    once for all of its queries (`score_video`); query-first profiles and
    `shared_prefix=False` take a full forward pass per pair.

    `scores` is the reading: `exact` (log P(yes) - log P(no) over the whole
    vocabulary) or `served` (the RANKVIDEO release's served values, `served_scores`,
    with the exact ones in `exact_*` fields beside them). `fields` names what each
    score dict holds.
    """

    def __init__(
        self,
        model_path: str,
        video: VideoSettings | dict | None = None,
        profile: str | None = None,
        answer_words: tuple[str, str] | None = None,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
        cache_dir: str | None = None,
        shared_prefix: bool = True,
        scores: str = "exact",
    ):
        if scores not in READINGS:
            raise ValueError(f"scores {scores!r}: use one of {', '.join(READINGS)}")
        video = dataclasses.asdict(video) if isinstance(video, VideoSettings) else dict(video or {})
        self.profile = resolve_profile(model_path, profile, answer_words, video)
        log.info("scoring profile (%s): %s", self.profile.source, self.profile.as_dict())
        self.model_path = model_path
        self.model, self.processor, self.device = self._load(model_path, device, dtype, cache_dir)
        self.tokenizer = self.processor.tokenizer
        self.video = for_processor(video | self.profile.video, self.processor)
        self.template = self.profile.template
        self.batch_size = batch_size
        prompt = get_profile(self.template)
        # the shared prefix never cuts: a profile that cuts takes a full pass per pair
        self.shared_prefix = shared_prefix and prompt.video_first and not prompt.max_length
        if shared_prefix and not self.shared_prefix:
            why = "cuts long inputs" if prompt.max_length else "puts the query before the video"
            log.info("profile %r %s: one pass per pair", self.template, why)
        self._split_checked = False
        self.cut_inputs = 0  # pairs cut to the profile's max_length
        self.scores = scores
        self.fields = (
            SCORE_FIELDS
            + (EXACT_FIELDS + SERVED_FIELDS) * (scores == "served")
            + (AUTHORS_FIELD,) * (self.template in BF16_SIGMOID)
            + CUT_FIELDS * bool(prompt.max_length)
        )
        if scores == "served":
            log.info(
                "scores as the RANKVIDEO release serves them (vLLM's top %d log-probabilities "
                "and the sampled token); the exact ones go to %s",
                SERVED_TOP,
                ", ".join(EXACT_FIELDS),
            )
        yes, no = self.profile.answer_words
        self.yes_ids = answer_ids(self.tokenizer, yes, self.profile.answers)
        self.no_ids = answer_ids(self.tokenizer, no, self.profile.answers)
        log.info("answer tokens: yes %s, no %s", self.yes_ids, self.no_ids)

    def _load(self, model_path: str, device: str, dtype: str, cache_dir):
        return load_vlm(model_path, device, dtype, cache_dir)

    def _model_identity(self) -> dict:
        return model_identity(self.model_path, self.model, self.device)

    def identity(self) -> dict:
        """Everything that decides this reranker's scores (what a resumed output must share)."""
        return {
            **self._model_identity(),
            "template": self.template,
            "video_span": video_span(self.processor),
            "answer_ids": [self.yes_ids, self.no_ids],
            "video": self.video.sampling(),
            "batch_size": self.batch_size,
            "shared_prefix": self.shared_prefix,
            # only where they differ from the exact reading's four fields, so the
            # outputs of exact scoring keep their fingerprints
            **({"fields": list(self.fields)} if self.fields != SCORE_FIELDS else {}),
            **({"scores": self.scores} if self.scores != "exact" else {}),
        }

    def inputs(self, queries: Sequence[str], videos: Sequence[tuple]) -> dict:
        """Processor outputs for a batch of (query, decoded video) pairs, left-padded."""
        return self._prepared(queries, videos)[0]

    def _prepared(self, queries: Sequence[str], videos: Sequence[tuple]):
        """(inputs, what the cut removed from each row: `CUT_FIELDS`, or None for a
        profile that does not cut)."""
        texts = [build_prompt(q, self.template) for q in queries]
        inputs = video_inputs(self.processor, texts, videos, self.device)
        max_length = get_profile(self.template).max_length
        if max_length and inputs["attention_mask"].sum(dim=1).max() > max_length + 5:
            return self._cut(inputs, max_length, queries)
        if CUT_FIELDS[0] not in self.fields:
            return inputs, None
        return inputs, [{"cut_tokens": 0, "query_lost": False} for _ in queries]

    def query_positions(self, query: str, length: int) -> list[int]:
        """Positions of the query's tokens in a processed row of `length` tokens.

        The text on either side of the video is tokenized as in the full prompt (the
        video span's special tokens bound it), so a query before the video sits at the
        same positions, and one after it at the same distance from the end.
        """
        text = build_prompt(query, self.template)
        start = build_prompt("\x00", self.template).index("\x00")
        end = start + len(" ".join(query.split()))
        cut = text.find(VIDEO)
        before, after = (text, "") if cut < 0 else (text[:cut], text[cut + len(VIDEO) :])
        if end <= len(before):
            part, offset, first = before, 0, 0
        else:
            part, offset = after, len(text) - len(after)
            first = length - len(self.tokenizer(after, add_special_tokens=False).input_ids)
        spans = self.tokenizer(part, add_special_tokens=False, return_offsets_mapping=True)
        return [
            first + i
            for i, (a, b) in enumerate(spans["offset_mapping"])
            if a + offset < end and b + offset > start
        ]

    def _cut(self, inputs, max_length: int, queries: Sequence[str]):
        """Rows longer than the profile allows, cut as its authors cut them; re-padded.

        Returns the inputs and, per row, the tokens removed (`cut_tokens`) and whether
        no token of the query survived (`query_lost`: the row then holds the same
        tokens for every query of its video, which all get one score).
        """
        special = set(self.tokenizer.all_special_ids)
        per_token = [k for k, v in inputs.items() if v.shape[:2] == inputs["input_ids"].shape]
        rows, cuts = [], []
        for i, mask in enumerate(inputs["attention_mask"].bool()):
            ids = inputs["input_ids"][i][mask].tolist()
            kept = kept_positions(ids, special, max_length)
            rows.append({k: inputs[k][i][mask][torch.tensor(kept)] for k in per_token})
            removed = len(ids) - len(kept)
            lost = removed > 0 and not set(self.query_positions(queries[i], len(ids))) & set(kept)
            cuts.append({"cut_tokens": removed, "query_lost": lost})
        self.cut_inputs += sum(c["cut_tokens"] > 0 for c in cuts)
        width = max(len(r["input_ids"]) for r in rows)
        for k in per_token:
            pad = self.tokenizer.pad_token_id if k == "input_ids" else 0
            inputs[k] = torch.stack([
                torch.cat([r[k].new_full((width - len(r[k]),), pad), r[k]]) for r in rows
            ])  # fmt: skip
        return inputs, cuts

    @torch.inference_mode()
    def score_decoded(self, queries: Sequence[str], videos: Sequence[tuple]) -> list[dict]:
        """Scores for pairs whose videos are already decoded (see `load_video`)."""
        inputs, cuts = self._prepared(queries, videos)
        out = self.model(**inputs, logits_to_keep=1, use_cache=False)
        scores = self._scores(out.logits[:, -1, :], queries)
        for score, cut in zip(scores, cuts or [{}] * len(scores), strict=True):
            score.update(cut)
        return scores

    def _scores(self, logits: torch.Tensor, queries: Sequence[str]) -> list[dict]:
        """The score dicts of answer-slot logits (B, V): the exact reading, or the served
        one with the exact one beside it; and the authors' bf16 sigmoid where they use it."""
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        try:
            exact = scores_from_logprobs(
                log_probs[:, [*self.yes_ids, *self.no_ids]], len(self.yes_ids)
            )
        except FloatingPointError as e:  # a broken model (e.g. NaN weights), not a bad pair
            raise FloatingPointError(
                f"{self.model_path}: {e} for the queries {list(queries)[:3]}; "
                "check the model's weights"
            ) from e
        if self.scores == "served":
            served = served_scores(log_probs, self.yes_ids, self.no_ids)
            scores = [
                s | {f"exact_{k}": e[k] for k in SCORE_FIELDS}
                for s, e in zip(served, exact, strict=True)
            ]
        else:
            scores = exact
        if self.template in BF16_SIGMOID:
            authors = bf16_sigmoid([e["logit_delta"] for e in exact])
            for score, value in zip(scores, authors, strict=True):
                score[AUTHORS_FIELD] = value
        return scores

    @torch.inference_mode()
    def score_video(
        self, decoded: tuple, queries: Sequence[str], batch_size: int | None = None
    ) -> list[dict]:
        """Scores of one decoded video against each query, `batch_size` queries per pass.

        A video with a single query takes one full forward pass even with the shared
        prefix on: splitting it costs a second pass and a cache for nothing (0.6-0.75x
        the throughput of one pass for Qwen3-VL-8B on an H100, docs/scoring.md).
        """
        if not queries:
            return []
        size = batch_size or self.batch_size
        chunks = [queries[start : start + size] for start in range(0, len(queries), size)]
        if not self.shared_prefix or len(queries) == 1:
            return [
                s for chunk in chunks for s in self.score_decoded(chunk, [decoded] * len(chunk))
            ]
        prefix_text, _ = split_prompt(queries[0], self.template)
        prefix_inputs = video_inputs(self.processor, [prefix_text], [decoded], self.device)
        if not self._split_checked:
            self._check_split(prefix_inputs["input_ids"][0], queries[0], decoded)
        prefix = encode_prefix(self.model, prefix_inputs)
        scores = []
        for chunk in chunks:
            suffixes = [split_prompt(q, self.template)[1] for q in chunk]
            tokens = self.tokenizer(
                suffixes, add_special_tokens=False, padding=True, return_tensors="pt"
            ).to(self.device)
            logits = suffix_logits(self.model, prefix, tokens.input_ids, tokens.attention_mask)
            scores += self._scores(logits, chunk)
        return scores

    def _check_split(self, prefix_ids, query: str, decoded: tuple) -> None:
        """Prefix tokens + suffix tokens must be exactly the full prompt's tokens."""
        full = self.inputs([query], [decoded])["input_ids"][0]
        suffix = self.tokenizer(split_prompt(query, self.template)[1], add_special_tokens=False)
        joined = prefix_ids.tolist() + suffix["input_ids"]
        if joined != full.tolist():
            raise RuntimeError(
                f"prompt profile {self.template!r}: prefix + suffix tokens differ from the "
                "full prompt's; score with shared_prefix off"
            )
        self._split_checked = True

    def score_batch(
        self, queries: Sequence[str], video_paths: Sequence[str], batch_size: int | None = None
    ) -> list[dict]:
        """One dict per pair: `p_yes`, `logit_delta`, `logprob_yes`, `logprob_no`.

        Each distinct video is decoded once and scored against all of its queries.
        """
        if len(queries) != len(video_paths):
            raise ValueError(f"{len(queries)} queries but {len(video_paths)} video paths")
        by_video: dict[str, list[int]] = {}
        for i, path in enumerate(video_paths):
            by_video.setdefault(path, []).append(i)
        scores: list[dict | None] = [None] * len(queries)
        for path, rows in by_video.items():
            decoded = load_video(path, self.video)  # large: one video at a time
            video_scores = self.score_video(decoded, [queries[i] for i in rows], batch_size)
            for i, score in zip(rows, video_scores, strict=True):
                scores[i] = score
        return scores
