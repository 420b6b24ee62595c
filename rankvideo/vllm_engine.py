"""vLLM as the engine of the three model steps: captions, teacher labels, scoring.

Each class here is the transformers class of its step with the model calls served by
vLLM (continuous batching, paged KV cache, prefix caching); prompts, answer tokens,
frames and outputs are the same, so the rest of the workflow cannot tell the engines
apart except by speed and by float rounding (docs/engines.md gives the measured gaps).

- `VLLMReranker` reads the answer slot's log-probabilities of every yes and no
  spelling (`logprob_token_ids`: over the whole vocabulary, before any processing).
  A video's requests go in after its first one, so the first one's video prefix is in
  the prefix cache when the others are scheduled.
- `VLLMTeacher` generates the reasoning greedily and scores the slot after
  `</think>` in a second, one-token request, as the transformers teacher does.
- `VLLMCaptioner` generates captions greedily from the frames decoded here (the frame
  cache), handed to vLLM with their sampling metadata.

The video reaches vLLM in the text form that gives Qwen3-VL its authors' token layout
(one `<|vision_start|>` pads `<|vision_end|>` span per temporal group and nothing
around them): found by probing the running engine (`served_video_span`), as the
transformers engine probes its processor (`rankvideo.models.video_span`).

An answer token missing from what the engine returns is an error naming the query;
a score is never made up.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Sequence

import torch

from rankvideo.captioner import Captioner
from rankvideo.elsewhere import VLLM_DEFAULTS, in_engine_environment
from rankvideo.fingerprint import model_files
from rankvideo.models import pick_device, pick_dtype, probe_span
from rankvideo.prompt import VIDEO, build_prompt, get_profile
from rankvideo.reasoner import ReasoningTeacher
from rankvideo.scoring import VLMReranker, scores_from_logprobs
from rankvideo.video import VideoSettings, load_video

log = logging.getLogger(__name__)

# vLLM's own processor call gets what rankvideo.models.video_inputs passes: the frames
# are sampled and sized already
VIDEO_KWARGS = {"do_sample_frames": False, "do_resize": False, "cap_pixels_per_frame": False}
MAX_ANSWER_IDS = 128  # vLLM's limit on logprob_token_ids


class MissingAnswerLogprobs(RuntimeError):
    pass


def start_engine(model_path: str, settings: dict | None, dtype: str, video: bool):
    """A vLLM `LLM` for `model_path` with the engine settings (VLLM_DEFAULTS's keys)."""
    try:
        from vllm import LLM
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"engine vllm: vLLM is not installed for {sys.executable} ({e}); run this with "
            "the interpreter of its environment (docs/engines.md)"
        ) from e

    settings = {**VLLM_DEFAULTS, **(settings or {})}
    # several jobs share a CPU machine: vLLM's default binds every job to the same cores
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    kwargs = dict(
        model=model_path,
        dtype=pick_dtype(dtype, pick_device()),
        max_model_len=settings["max_model_len"],
        enforce_eager=settings["enforce_eager"],
        kv_cache_memory_bytes=int(settings["memory_gib"] * 2**30),
        enable_prefix_caching=True,
        seed=0,
    )
    if video:
        kwargs["limit_mm_per_prompt"] = {"image": 0, "video": 1}
        kwargs["mm_processor_kwargs"] = VIDEO_KWARGS
        kwargs.update(processor_normalizes())
    log.info("starting vLLM for %s: %s", model_path, {**settings, **kwargs})
    return LLM(**kwargs)


def processor_normalizes() -> dict:
    """The engine setting that leaves pixel normalisation to the video processor, where
    this vLLM has one (`mm_device_do_normalize`, on by default in vLLM 0.32).

    On the device, vLLM normalises video frames with the image processor's mean and
    std, not the video processor's: for a checkpoint whose two differ, the vision tower
    gets other pixels than on transformers (docs/engines.md).
    """
    from vllm.engine.arg_utils import EngineArgs

    fields = {f.name for f in dataclasses.fields(EngineArgs)}
    return {"mm_device_do_normalize": False} if "mm_device_do_normalize" in fields else {}


def engine_identity(model_path: str, dtype: str) -> dict:
    import vllm

    return {
        "model": model_files(model_path),
        "engine": f"vllm {vllm.__version__}",
        "dtype": str(pick_dtype(dtype, pick_device())),
        "device": pick_device().type,
    }


def answer_logprobs_of(output, ids: Sequence[int], what: str) -> list[float]:
    """The first generated position's log-probabilities of `ids` from a vLLM output."""
    returned = output.outputs[0].logprobs[0] if output.outputs[0].logprobs else {}
    missing = [t for t in ids if t not in returned]
    if missing:
        raise MissingAnswerLogprobs(
            f"{what}: vLLM returned no log-probability for the answer tokens {missing}"
        )
    return [returned[t].logprob for t in ids]


def slot_params(ids: Sequence[int]):
    """One greedy token, with the log-probabilities of the answer tokens `ids`."""
    from vllm import SamplingParams

    if len(ids) > MAX_ANSWER_IDS:
        raise ValueError(f"{len(ids)} answer tokens: vLLM returns at most {MAX_ANSWER_IDS}")
    return SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=list(ids))


def slot_scores(outputs, yes_ids, no_ids, labels: Sequence[str]) -> list[dict]:
    ids = [*yes_ids, *no_ids]
    rows = [answer_logprobs_of(o, ids, what) for o, what in zip(outputs, labels, strict=True)]
    return scores_from_logprobs(torch.tensor(rows, dtype=torch.float64), len(yes_ids))


def video_request(prompt: str, decoded: tuple, span: str) -> dict:
    """A vLLM request for `prompt` (its video written as `prompt.VIDEO`) with one decoded
    video, the video written as `span`."""
    frames, metadata = decoded
    return {
        "prompt": prompt.replace(VIDEO, span),
        "multi_modal_data": {"video": (frames, dict(metadata))},
        "mm_processor_kwargs": VIDEO_KWARGS,
    }


def served_video_span(llm, processor) -> str:
    """The text form of a video for which `llm` (a vLLM engine) lays out Qwen3-VL's video
    as its authors' stack does (`rankvideo.models.probe_span`, run through the engine).

    vLLM 0.11 replaces the template's whole `<|vision_start|><|video_pad|><|vision_end|>`
    span; vLLM 0.32 replaces only `<|video_pad|>` when the installed transformers does
    (5.10 and later) and keeps the outer pair: the probe's prompt ids say which.
    """
    from vllm import SamplingParams

    def ids_of(text: str, decoded: tuple) -> list[int]:
        request = video_request(text, decoded, text)
        [output] = llm.generate([request], SamplingParams(max_tokens=1), use_tqdm=False)
        return list(output.prompt_token_ids)

    span = probe_span(processor, ids_of, "vLLM's Qwen3-VL prompt")
    log.info("video span for vLLM: %r", span)
    return span


def greedy_params(max_tokens: int):
    from vllm import SamplingParams

    return SamplingParams(max_tokens=max_tokens, temperature=0.0, skip_special_tokens=True)


class ServedByVLLM:
    """What the three classes below share: the engine's settings (`engine`, with
    VLLM_DEFAULTS's keys), its start in `_load`, and its identity."""

    VIDEO = True  # a vision-language model: the processor loads, and video inputs are on

    def __init__(self, model_path: str, *args, engine: dict | None = None, llm=None, **kwargs):
        """`llm`: an engine already serving `model_path` (`start_engine`), shared."""
        self.engine = engine
        self.llm = llm
        super().__init__(model_path, *args, **kwargs)

    def _load(self, model_path, device, dtype, cache_dir=None):
        from transformers import AutoProcessor, AutoTokenizer

        self.dtype = dtype
        loader = AutoProcessor if self.VIDEO else AutoTokenizer
        preprocessor = loader.from_pretrained(model_path, cache_dir=cache_dir)
        llm = self.llm or start_engine(model_path, self.engine, dtype, video=self.VIDEO)
        if self.VIDEO:  # how the video is written in vLLM's prompts
            self.span = served_video_span(llm, preprocessor)
        return llm, preprocessor, pick_device()

    def _model_identity(self) -> dict:
        return engine_identity(self.model_path, self.dtype)


class VLLMReranker(ServedByVLLM, VLMReranker):
    """`VLMReranker` served by vLLM."""

    def __init__(self, model_path: str, *args, engine: dict | None = None, **kwargs):
        self.cached_tokens = self.prompt_tokens = 0
        super().__init__(model_path, *args, engine=engine, **kwargs)
        profile = get_profile(self.template)
        if profile.max_length:
            raise ValueError(
                f"prompt profile {self.template!r} cuts inputs past {profile.max_length} "
                "tokens as its authors do; the vllm engine does not cut: score this model "
                "with engine transformers"
            )
        # one request per pair: vLLM's prefix cache shares a video's prefix (video-first)
        self.shared_prefix = profile.video_first

    def identity(self) -> dict:
        # vLLM schedules its own batches
        return {**super().identity(), "batch_size": None, "video_span": self.span}

    def _requests(self, queries: Sequence[str], decoded: tuple) -> list[dict]:
        return [video_request(build_prompt(q, self.template), decoded, self.span) for q in queries]

    def score_video(self, decoded: tuple, queries: Sequence[str], batch_size=None) -> list[dict]:
        """Scores of one decoded video against each query."""
        if not queries:
            return []
        requests = self._requests(queries, decoded)
        params = slot_params([*self.yes_ids, *self.no_ids])
        # the first request alone: its video prefix is cached before the others run
        outputs = self.model.generate(requests[:1], params, use_tqdm=False)
        if len(requests) > 1:
            outputs += self.model.generate(requests[1:], params, use_tqdm=False)
        self.prompt_tokens += sum(len(o.prompt_token_ids) for o in outputs)
        self.cached_tokens += sum(o.num_cached_tokens or 0 for o in outputs)
        labels = [f"{self.model_path}, query {q!r}" for q in queries]
        return slot_scores(outputs, self.yes_ids, self.no_ids, labels)

    def score_decoded(self, queries: Sequence[str], videos: Sequence[tuple]) -> list[dict]:
        return [s for q, v in zip(queries, videos, strict=True) for s in self.score_video(v, [q])]

    def cache_summary(self) -> str:
        share = self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0
        return f"{share:.0%} of {self.prompt_tokens} prompt tokens read from vLLM's prefix cache"


class VLLMTeacher(ServedByVLLM, ReasoningTeacher):
    """`ReasoningTeacher` served by vLLM."""

    VIDEO = False

    def _requests(self, texts: Sequence[str]) -> list[dict]:
        return [
            {"prompt_token_ids": self.tokenizer.encode(t, add_special_tokens=False)} for t in texts
        ]

    def _generate(self, prompts: Sequence[str]) -> list[list[int]]:
        params = greedy_params(self.max_reasoning_tokens + self.max_answer_tokens)
        outputs = self.model.generate(self._requests(prompts), params, use_tqdm=False)
        stops = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id}
        return [[t for t in o.outputs[0].token_ids if t not in stops] for o in outputs]

    def _score_slots(self, texts: Sequence[str]) -> list[dict]:
        params = slot_params([*self.yes_ids, *self.no_ids])
        outputs = self.model.generate(self._requests(texts), params, use_tqdm=False)
        labels = [f"{self.model_path}, teacher prompt {i}" for i in range(len(texts))]
        return slot_scores(outputs, self.yes_ids, self.no_ids, labels)


class VLLMCaptioner(ServedByVLLM, Captioner):
    """`Captioner` served by vLLM."""

    def identity(self) -> dict:
        return {**super().identity(), "video_span": self.span}

    def _requests(self, videos: Sequence[tuple]) -> list[dict]:
        return [video_request(self.prompt, decoded, self.span) for decoded in videos]

    def caption_decoded(self, videos: Sequence[tuple]) -> list[dict]:
        requests = self._requests(videos)
        outputs = self.model.generate(requests, greedy_params(self.max_new_tokens), use_tqdm=False)
        tokenizer = self.processor.tokenizer
        stops = {tokenizer.pad_token_id, tokenizer.eos_token_id}
        results = []
        for o in outputs:
            ids = list(o.outputs[0].token_ids)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            results.append(
                {"text": " ".join(text.split()), "tokens": sum(t not in stops for t in ids)}
            )
        return results


@in_engine_environment
def served_prompt_ids(
    model: str,
    clip: str,
    query: str,
    profiles: Sequence[str],
    video: dict,
    caption_prompt: str,
    engine: dict | None = None,
    dtype: str = "float32",
) -> dict[str, list[int]]:
    """The prompt ids vLLM hands the model for one clip: scored with `query` under each
    of `profiles` (key: the profile) and captioned with `caption_prompt` (key:
    `captions`), through the requests the engine's classes make, on one engine. What the
    transformers engine hands the model for the same inputs must be the same
    (tests/test_vllm_engine.py)."""
    from vllm import SamplingParams

    llm, ids = None, {}

    def prompt_ids(served, requests) -> list[int]:
        [output] = served.model.generate(requests, SamplingParams(max_tokens=1), use_tqdm=False)
        return list(output.prompt_token_ids)

    for profile in profiles:
        reranker = VLLMReranker(model, video, profile, dtype=dtype, engine=engine, llm=llm)
        llm = reranker.model
        decoded = load_video(clip, reranker.video)
        ids[profile] = prompt_ids(reranker, reranker._requests([query], decoded))
    captioner = VLLMCaptioner(
        model, VideoSettings(**video), caption_prompt, dtype=dtype, engine=engine, llm=llm
    )
    ids["captions"] = prompt_ids(
        captioner, captioner._requests([load_video(clip, captioner.video)])
    )
    return ids
