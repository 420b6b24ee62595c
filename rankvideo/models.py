"""Loading models by `from_pretrained(name_or_path)`: hub ids (local cache) or folders.

torch is imported where a model loads: the workflow checks model paths when it starts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from rankvideo.prompt import VIDEO

log = logging.getLogger(__name__)


def adapter_base(model_path: str) -> str | None:
    """The base model of a PEFT adapter folder (what QLoRA training saves), else None."""
    folder = Path(model_path)
    if not (folder / "adapter_config.json").is_file() or (folder / "config.json").is_file():
        return None
    return json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]


class ModelLoadError(ValueError):
    """A model that cannot be loaded; the message names it and what is wrong."""


def check_model_path(model_path: str) -> None:
    """A folder must hold a model; a name that is not a folder must look like a hub id.

    Without this, a mistyped folder reaches the hub client and comes back as a
    repository-id validation error that does not say the folder is missing.
    """
    folder = Path(model_path)
    if folder.is_dir():
        if not any((folder / f).is_file() for f in ("config.json", "adapter_config.json")):
            raise ModelLoadError(
                f"{model_path}: the folder holds no model (no config.json or adapter_config.json)"
            )
        return
    parts = model_path.split("/")
    if folder.exists() or model_path.startswith((".", "/", "~")) or len(parts) > 2:
        raise ModelLoadError(f"{model_path}: no such model folder")


def model_identity(model_path: str, model, device) -> dict:
    """A loaded model's files (or hub revision), dtype and device: what decides its numbers."""
    from rankvideo.fingerprint import model_files

    return {"model": model_files(model_path), "dtype": str(model.dtype), "device": device.type}


def pick_device(device: str = "auto") -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def load_vlm(model_path: str, device: str = "auto", dtype: str = "auto", cache_dir=None):
    """(model, processor, device) of a vision-language model, in eval mode.

    Qwen3-VL and Qwen2.5-VL load through AutoModelForImageTextToText; for a
    Qwen3-Omni checkpoint only its thinker (the text-generating part) is loaded.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    check_model_path(model_path)
    where = pick_device(device)
    base = adapter_base(model_path)
    weights = base or model_path
    try:
        model_type = AutoConfig.from_pretrained(weights, cache_dir=cache_dir).model_type
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{weights}: cannot read the model's config: {e}") from e
    if model_type == "qwen3_omni_moe":
        from transformers import Qwen3OmniMoeThinkerForConditionalGeneration as model_class
    elif model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        model_class = AutoModelForImageTextToText
    else:
        raise ModelLoadError(
            f"{weights}: a {model_type!r} model is not a vision-language model "
            "(use a Qwen3-VL, Qwen2.5-VL or Qwen3-Omni checkpoint)"
        )
    try:
        processor = AutoProcessor.from_pretrained(model_path, cache_dir=cache_dir)
        model = model_class.from_pretrained(
            weights, dtype=pick_dtype(dtype, where), cache_dir=cache_dir
        )
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{model_path}: cannot load the model: {e}") from e
    processor.tokenizer.padding_side = "left"  # the next-token slot is the last column
    if base:  # a QLoRA adapter: merged into its base (bf16/fp32, not 4-bit) for scoring
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, model_path).merge_and_unload()
        log.info("merged the adapter %s into its base %s", model_path, base)
    model = model.to(where)
    model.eval()
    log.info("loaded %s (%s) on %s", model_path, type(model).__name__, where)
    return model, processor, where


def load_text_lm(model_path: str, device: str = "auto", dtype: str = "auto", cache_dir=None):
    """(model, tokenizer, device) of a causal language model, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model_path(model_path)
    where = pick_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, cache_dir=cache_dir)
        model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=pick_dtype(dtype, where), cache_dir=cache_dir
        ).to(where)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{model_path}: cannot load the language model: {e}") from e
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    log.info("loaded %s (%s) on %s", model_path, type(model).__name__, where)
    return model, tokenizer, where


def video_inputs(processor, texts, videos, device) -> dict:
    """Processor outputs for prompts with one decoded video each (see video.load_video).

    Each text writes its video as the chat template does (`prompt.VIDEO`); it reaches
    the processor in the form that gives the authors' token layout (`video_span`).
    """
    span = video_span(processor)
    texts = [text.replace(VIDEO, span) for text in texts]
    return _processed(processor, texts, videos).to(device)


def _processed(processor, texts, videos):
    frames, metadata = zip(*videos, strict=True)
    # frames arrive sized by qwen-vl-utils (do_resize=False): the processor's own
    # per-frame pixel cap is moot, and naming it silences a deprecation warning
    capped = hasattr(type(processor.video_processor), "cap_pixels_per_frame")
    return processor(
        text=list(texts),
        videos=list(frames),
        video_metadata=list(metadata),
        do_resize=False,
        do_sample_frames=False,
        padding=True,
        return_tensors="pt",
        **({"cap_pixels_per_frame": False} if capped else {}),
    )


class VideoSpanError(RuntimeError):
    """No text form of the video gives the authors' token layout with this processor."""


def video_span(processor) -> str:
    """The text form of a video that makes `processor` give the token layout its model
    was trained with: one `<|vision_start|>` pads `<|vision_end|>` span per temporal
    group (Qwen3-VL: each after its `<t seconds>` stamp), and nothing around them.

    The chat template writes `<|vision_start|><|video_pad|><|vision_end|>`. transformers
    4.57 (the RANKVIDEO release's pin) and vLLM 0.11 replace that whole span for
    Qwen3-VL; transformers 5.10 and later (and vLLM 0.32 with them) replace only
    `<|video_pad|>` and keep the outer pair, two ids the model never saw, with every
    later rope position moved by 2. Which one a processor does is found by processing a
    4-frame probe (once per processor class, `probe_span`), not read from a version
    number: the first form whose spans alternate without nesting is taken. Qwen2.5-VL
    (no stamps) keeps the template's span either way. The vllm engine probes vLLM itself
    the same way (`rankvideo.vllm_engine.served_video_span`).
    """
    key = type(processor).__qualname__
    if key not in _SPANS:
        _SPANS[key] = _probe_span(processor)
        log.info("video span for %s: %r", key, _SPANS[key])
    return _SPANS[key]


_SPANS: dict[str, str] = {}
BARE_VIDEO = "<|video_pad|>"


def _probe_span(processor) -> str:
    return probe_span(
        processor,
        lambda text, video: _processed(processor, [text], [video])["input_ids"][0].tolist(),
        type(processor).__name__,
    )


def probe_span(processor, ids_of, what: str) -> str:
    """The first text form of a video (`prompt.VIDEO`, then the bare `<|video_pad|>`) for
    which `ids_of(text, decoded video)`, the prompt ids an engine makes of a text holding
    one video, has spans that alternate without nesting; `processor` gives the tokenizer
    and the patch size of a 4-frame probe video. An error naming `what` when none does.
    """
    import torch

    tokenizer = processor.tokenizer
    start, end, pad = tokenizer.convert_tokens_to_ids(
        ["<|vision_start|>", "<|vision_end|>", BARE_VIDEO]
    )
    patch = getattr(processor.video_processor, "patch_size", 16) * 2
    probe = (
        torch.zeros(4, 3, patch, patch),
        {
            "fps": 2.0,
            "frames_indices": [0, 1, 2, 3],
            "total_num_frames": 4,
            "video_backend": "decord",
        },
    )
    seen = {}
    for form in (VIDEO, BARE_VIDEO):
        ids = ids_of(form, probe)
        seen[form] = ids
        if _alternating_spans(ids, start, end, pad):
            return form
    raise VideoSpanError(
        f"{what}: no text form of the video gives one "
        f"<|vision_start|>...<|vision_end|> span per frame group; ids seen: {seen}"
    )


def _alternating_spans(ids: list[int], start: int, end: int, pad: int) -> bool:
    """Spans open and close in turn, each holds pads, and no pad stands outside one."""
    inside, pads_in_span = False, 0
    for token in ids:
        if token == start:
            if inside:
                return False
            inside, pads_in_span = True, 0
        elif token == end:
            if not inside or pads_in_span == 0:
                return False
            inside = False
        elif token == pad:
            if not inside:
                return False
            pads_in_span += 1
    return not inside and ids.count(start) > 0
