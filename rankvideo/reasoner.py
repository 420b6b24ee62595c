"""A rank1-style text reasoning reranker: think, then answer, scored at the answer slot.

The model reads a relevance instruction, the query and the video's evidence
(caption, and ASR text when there is some), writes its reasoning after
`<think>`, closes it with `</think>` and answers. The soft label is
`p_yes = sigmoid(log P(yes) - log P(no))` at the slot right after `</think>`,
summed over every spelling of the answer words (yes/no or true/false). When the
reasoning runs out of tokens it is closed for the model and the slot is scored
all the same: a pair never gets a constant. `rankvideo.vllm_engine.VLLMTeacher` is
the same teacher served by vLLM.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rankvideo.models import load_text_lm, model_identity
from rankvideo.scoring import answer_token_ids, yes_no_scores

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

DEFAULT_INSTRUCTION = "A video is relevant if it shows what the query asks for."

TEMPLATE = (
    "Determine if the following video is relevant to the query. {instruction} "
    "Answer only with '{yes}' or '{no}'.\n"
    "Query: {query}\n"
    "Video caption: {caption}\n"
    "{asr_line}"
    f"{THINK_OPEN}\n"
)


def render_prompt(instruction: str, answer_words, query: str, caption: str, asr: str = "") -> str:
    """TEMPLATE filled in: the teacher's prompt, up to and including `<think>`."""
    return TEMPLATE.format(
        instruction=instruction,
        yes=answer_words[0],
        no=answer_words[1],
        query=" ".join(query.split()),
        caption=caption or "(none)",
        asr_line=f"Video speech: {asr}\n" if asr else "",
    )


@dataclass
class Evidence:
    caption: str
    asr: str = ""


def parse_generation(text: str, answer_words: tuple[str, str]) -> tuple[str, int | None, bool]:
    """(reasoning, answer 1/0 or None, whether `</think>` closed the reasoning).

    The answer is the first word after `</think>` when it is one of the answer
    words (any case, surrounding punctuation ignored); anything else is None.
    """
    if THINK_CLOSE not in text:
        return text.strip(), None, False
    reasoning, _, after = text.partition(THINK_CLOSE)
    words = re.findall(r"[A-Za-z]+", after)
    first = words[0].lower() if words else ""
    answer = {answer_words[0].lower(): 1, answer_words[1].lower(): 0}.get(first)
    return reasoning.strip(), answer, True


class ReasoningTeacher:
    """Text reranker in the rank1 style; `predict(pairs)` scores (query, text) pairs."""

    def __init__(
        self,
        model_path: str,
        instruction: str = DEFAULT_INSTRUCTION,
        answer_words: tuple[str, str] = ("true", "false"),
        max_reasoning_tokens: int = 512,
        max_answer_tokens: int = 4,
        max_caption_tokens: int = 512,
        max_asr_tokens: int = 256,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
    ):
        self.model_path = model_path
        self.model, self.tokenizer, self.device = self._load(model_path, device, dtype)
        self.instruction = instruction
        self.answer_words = tuple(answer_words)
        self.yes_ids = answer_token_ids(self.tokenizer, answer_words[0])
        self.no_ids = answer_token_ids(self.tokenizer, answer_words[1])
        self.max_reasoning_tokens = max_reasoning_tokens
        self.max_answer_tokens = max_answer_tokens
        self.max_caption_tokens = max_caption_tokens
        self.max_asr_tokens = max_asr_tokens
        self.batch_size = batch_size

    def _load(self, model_path: str, device: str, dtype: str):
        return load_text_lm(model_path, device, dtype)

    def _model_identity(self) -> dict:
        return model_identity(self.model_path, self.model, self.device)

    def identity(self) -> dict:
        """Everything that decides the teacher's output (what a resumed output must share)."""
        keys = ("instruction", "answer_words", "max_reasoning_tokens", "max_answer_tokens")
        keys += ("max_caption_tokens", "max_asr_tokens", "batch_size")
        return {
            **self._model_identity(),
            **{k: getattr(self, k) for k in keys},
        }

    def _truncate(self, text: str, budget: int) -> str:
        ids = self.tokenizer.encode(" ".join(text.split()), add_special_tokens=False)
        return self.tokenizer.decode(ids[:budget]) if len(ids) > budget else " ".join(text.split())

    def prompt(self, query: str, evidence: Evidence) -> str:
        asr = self._truncate(evidence.asr, self.max_asr_tokens) if evidence.asr else ""
        caption = self._truncate(evidence.caption, self.max_caption_tokens)
        return render_prompt(self.instruction, self.answer_words, query, caption, asr)

    def _encode(self, texts: Sequence[str]) -> dict:
        return self.tokenizer(
            list(texts), return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)

    @torch.inference_mode()
    def _generate(self, prompts: Sequence[str]) -> list[list[int]]:
        inputs = self._encode(prompts)
        out = self.model.generate(
            **inputs,
            max_new_tokens=self.max_reasoning_tokens + self.max_answer_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        stops = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id}
        rows = out[:, inputs["input_ids"].shape[1] :].tolist()
        return [[t for t in row if t not in stops] for row in rows]

    @torch.inference_mode()
    def _score_slots(self, texts: Sequence[str]) -> list[dict]:
        out = self.model(**self._encode(texts), logits_to_keep=1, use_cache=False)
        return yes_no_scores(out.logits[:, -1, :], self.yes_ids, self.no_ids)

    def judge(self, queries: Sequence[str], evidence: Sequence[Evidence]) -> list[dict]:
        """Reasoning, labels and scores for a batch of (query, evidence) pairs."""
        prompts = [self.prompt(q, e) for q, e in zip(queries, evidence, strict=True)]
        judged, slots = [], []
        for prompt, ids in zip(prompts, self._generate(prompts), strict=True):
            reasoning, answer, closed = parse_generation(
                self.tokenizer.decode(ids), self.answer_words
            )
            reasoning_ids = self.tokenizer.encode(reasoning, add_special_tokens=False)
            forced = not closed or len(reasoning_ids) > self.max_reasoning_tokens
            if forced:  # out of budget: close the reasoning for the model, force the answer
                reasoning = self.tokenizer.decode(ids[: self.max_reasoning_tokens]).strip()
                reasoning_ids, answer = ids[: self.max_reasoning_tokens], None
            judged.append(
                {
                    "reasoning": reasoning,
                    "answer": answer,
                    "forced": forced,
                    "tokens": len(reasoning_ids),
                }
            )
            slots.append(f"{prompt}{reasoning}\n{THINK_CLOSE}\n")
        results = []
        for item, score in zip(judged, self._score_slots(slots), strict=True):
            label = item["answer"] if item["answer"] is not None else int(score["logit_delta"] > 0)
            results.append(
                {
                    "teacher_reasoning": item["reasoning"],
                    "teacher_label": label,
                    "label_source": "answer" if item["answer"] is not None else "score",
                    "teacher_p_yes": score["p_yes"],
                    "teacher_logit_delta": score["logit_delta"],
                    "logprob_yes": score["logprob_yes"],
                    "logprob_no": score["logprob_no"],
                    "reasoning_tokens": item["tokens"],
                    "forced_answer": item["forced"],
                }
            )
        return results

    def predict(
        self, pairs: Sequence[tuple[str, str]], batch_size: int | None = None
    ) -> list[dict]:
        """Judge (query, text) pairs: the text is the evidence, as a caption."""
        size = batch_size or self.batch_size
        results = []
        for start in range(0, len(pairs), size):
            chunk = pairs[start : start + size]
            results += self.judge([q for q, _ in chunk], [Evidence(t) for _, t in chunk])
        return results
