"""Video decoding through qwen-vl-utils, with an explicit reader backend.

qwen-vl-utils picks a reader by what is installed and, when it raises, silently
falls back to torchvision (whose `read_video` no longer exists). We force the
configured backend and turn any decoding failure into `VideoDecodeError` naming
the file and the reader's own error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("decord", "torchcodec")


class VideoDecodeError(RuntimeError):
    def __init__(self, path, cause: BaseException | str):
        self.path = str(path)
        super().__init__(f"{path}: cannot decode video: {cause}")


@dataclass(frozen=True)
class VideoSettings:
    """How frames are sampled and sized (the keys of the config's `video` section)."""

    backend: str = "decord"
    fps: float = 2.0  # frames sampled per second of video
    min_frames: int = 4
    max_frames: int = 32
    min_pixels: int = 128 * 32 * 32  # per frame, before patching
    max_pixels: int = 768 * 32 * 32
    patch_size: int = 16  # 16 for Qwen3-VL, 14 for Qwen2.5-VL (set from the processor)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"video backend {self.backend!r}: use one of {BACKENDS}")
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"video min_pixels {self.min_pixels} > max_pixels {self.max_pixels}")


class _NoFallback(RuntimeError):
    pass


def _refuse_fallback(ele):
    raise _NoFallback("fallback refused")


def _vision_process(backend: str):
    from qwen_vl_utils import vision_process

    if vision_process.FORCE_QWENVL_VIDEO_READER != backend:
        vision_process.FORCE_QWENVL_VIDEO_READER = backend
        vision_process.get_video_reader_backend.cache_clear()
    vision_process.VIDEO_READER_BACKENDS["torchvision"] = _refuse_fallback
    return vision_process


def load_video(path, settings: VideoSettings):
    """(frames float tensor (T, C, H, W), metadata dict) as Qwen-VL processors expect."""
    if not Path(path).is_file():
        raise VideoDecodeError(path, "no such file")
    vision_process = _vision_process(settings.backend)
    ele = {
        "video": str(path),
        "fps": settings.fps,
        "min_frames": settings.min_frames,
        "max_frames": settings.max_frames,
        "min_pixels": settings.min_pixels,
        "max_pixels": settings.max_pixels,
    }
    try:
        frames, metadata = vision_process.fetch_video(
            ele, image_patch_size=settings.patch_size, return_video_metadata=True
        )
    except _NoFallback as e:
        raise VideoDecodeError(path, f"{settings.backend}: {e.__context__}") from e.__context__
    except Exception as e:  # any reader or resize failure is this file's problem
        raise VideoDecodeError(path, f"{type(e).__name__}: {e}") from e
    return frames, metadata


def add_arguments(parser) -> None:
    """The frame-sampling options of the command-line entry points."""
    parser.add_argument("--backend", default=VideoSettings.backend, choices=BACKENDS)
    parser.add_argument("--fps", type=float, default=VideoSettings.fps)
    parser.add_argument("--max-frames", type=int, default=VideoSettings.max_frames)
    parser.add_argument("--min-pixels", type=int, default=VideoSettings.min_pixels)
    parser.add_argument("--max-pixels", type=int, default=VideoSettings.max_pixels)


def from_arguments(args) -> dict:
    keys = ("backend", "fps", "max_frames", "min_pixels", "max_pixels")
    return {key: getattr(args, key) for key in keys}


def for_processor(video: VideoSettings | dict | None, processor) -> VideoSettings:
    """The settings with the patch size of the model's own video processor (16 or 14)."""
    fields = video.__dict__ if isinstance(video, VideoSettings) else dict(video or {})
    return VideoSettings(
        **{**fields, "patch_size": getattr(processor.video_processor, "patch_size", 16)}
    )
