"""A vision-language model that captions decoded videos (the captions step's model).

The captioner is any model that `AutoModelForImageTextToText` loads (Qwen3-VL,
Qwen2.5-VL) or, for a Qwen3-Omni checkpoint, its thinker. Generation is greedy,
batched with left padding. `rankvideo.vllm_engine.VLLMCaptioner` is the same
captioner served by vLLM.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rankvideo.models import load_vlm, model_identity, video_inputs, video_span
from rankvideo.video import VideoSettings, for_processor

DEFAULT_PROMPT = (
    "Describe this video in 3 to 6 concise, factual sentences: the events, people, "
    "actions, objects, places and any readable text. Do not speculate."
)


def caption_prompt(processor, instruction: str) -> str:
    """The chat text of a captioning turn: the video, the instruction, the assistant's turn
    (shared by the captioner, stage 1 and the demo captioner's pretraining)."""
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": instruction}]}
    ]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


class Captioner:
    def __init__(
        self,
        model_path: str,
        video: VideoSettings | None = None,
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = 256,
        batch_size: int = 4,
        device: str = "auto",
        dtype: str = "auto",
    ):
        self.model_path = model_path
        self.model, self.processor, self.device = self._load(model_path, device, dtype)
        self.video = for_processor(video, self.processor)
        self.prompt = caption_prompt(self.processor, prompt)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def _load(self, model_path: str, device: str, dtype: str):
        return load_vlm(model_path, device, dtype)

    def _model_identity(self) -> dict:
        return model_identity(self.model_path, self.model, self.device)

    def identity(self) -> dict:
        """Everything that decides the captions (what a resumed output must share)."""
        return {
            **self._model_identity(),
            "prompt": self.prompt,
            "video_span": video_span(self.processor),
            "max_new_tokens": self.max_new_tokens,
            "batch_size": self.batch_size,
            "video": self.video.sampling(),
        }

    @torch.inference_mode()
    def caption_decoded(self, videos: Sequence[tuple]) -> list[dict]:
        """Caption text and generated-token count per decoded video."""
        inputs = video_inputs(self.processor, [self.prompt] * len(videos), videos, self.device)
        tokenizer = self.processor.tokenizer
        out = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        new = out[:, inputs["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        stops = {tokenizer.pad_token_id, tokenizer.eos_token_id}
        lengths = [sum(int(t) not in stops for t in row) for row in new]
        return [
            {"text": " ".join(t.split()), "tokens": n} for t, n in zip(texts, lengths, strict=True)
        ]
