"""Video decoding through qwen-vl-utils, with an explicit reader backend and a frame cache.

qwen-vl-utils picks a reader by what is installed and, when it raises, silently
falls back to torchvision (whose `read_video` no longer exists). We force the
configured backend and turn any decoding failure into `VideoDecodeError` naming
the file and the reader's own error.

Decode once: with `VideoSettings.cache` set to a folder, the sampled and resized
frames of each video are stored there (keyed by the file and every sampling
setting) and every later step that asks for the same frames (captions, both
training stages, each system's reranking) reads them back instead of decoding
again. The model gets exactly qwen-vl-utils' output, as in the authors' pipeline:
it resizes the reader's uint8 frames in uint8, so its frames are whole numbers in
0..255 and are stored as uint8 without loss (float32 if a reader ever gives
fractions), and a cached video gives exactly the frames of a freshly decoded one.
`DECODES` counts real decodes and cache reads in this process; the steps log it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from rankvideo.options import at_least, positive_float, positive_int

BACKENDS = ("decord", "torchcodec")

log = logging.getLogger(__name__)


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
    cache: str | None = None  # folder of decoded frames shared by all steps; None: no cache

    def sampling(self) -> dict:
        """Every setting that decides the frames (all but where they are cached)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "cache"}

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


DECODES: Counter = Counter()  # "decoded" (read from the file) and "cached" (frame cache)


def load_video(path, settings: VideoSettings):
    """(frames float tensor (T, C, H, W), metadata dict) as Qwen-VL processors expect."""
    if not Path(path).is_file():
        raise VideoDecodeError(path, "no such file")
    cached = _cache_file(path, settings) if settings.cache else None
    if cached is not None and cached.is_file():
        try:
            entry = torch.load(cached, weights_only=True)
            DECODES["cached"] += 1
            return entry["frames"].float(), entry["metadata"]
        except Exception as e:  # an unreadable entry is decoded again and replaced
            log.warning("%s: unreadable frame cache entry %s (%s): decoding again", path, cached, e)
    frames, metadata = _decode(path, settings)
    DECODES["decoded"] += 1
    if cached is not None:
        _store(cached, {"frames": frames, "metadata": metadata})
    return frames.float(), metadata


class FrameMemo:
    """`load_video` for a step that reads the same videos again and again (training: every
    group, every epoch), keeping decoded videos in memory up to `max_bytes`.

    Callers get the kept tensors themselves: processors read them and do not change them.
    """

    def __init__(self, settings: VideoSettings, max_bytes: int = 2 * 2**30):
        self.settings, self.max_bytes = settings, max_bytes
        self._kept: dict[str, tuple] = {}
        self._bytes = 0

    def __call__(self, path) -> tuple:
        video = self._kept.get(str(path))
        if video is None:
            video = load_video(path, self.settings)
            size = video[0].numel() * video[0].element_size()
            if self._bytes + size <= self.max_bytes:
                self._kept[str(path)] = video
                self._bytes += size
        return video


def decode_summary() -> str:
    return f"{DECODES['decoded']} videos decoded, {DECODES['cached']} read from the frame cache"


def _cache_file(path, settings: VideoSettings) -> Path:
    """Where a video's frames live: one folder per sampling setting, one file per video."""
    folder = hashlib.sha1(json.dumps(settings.sampling(), sort_keys=True).encode()).hexdigest()[:12]
    stat = Path(path).stat()  # a changed or replaced file is a new entry
    source = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    name = f"{Path(path).stem}-{hashlib.sha1(source.encode()).hexdigest()[:12]}.pt"
    return Path(settings.cache) / folder / name


def _store(target: Path, entry: dict) -> None:
    """Write atomically: parallel jobs may store the same video at the same time."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(entry, temporary)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _decode(path, settings: VideoSettings):
    """Frames (T, C, H, W) and metadata, read from the file by the forced backend: uint8
    when qwen-vl-utils' frames are whole numbers in 0..255 (they are: it resizes in
    uint8), else float32; either way exactly its values."""
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
    as_bytes = frames.clamp(0, 255).to(torch.uint8)
    return (as_bytes if torch.equal(as_bytes.float(), frames.float()) else frames.float()), metadata


def check_readable(paths, backend: str = "decord") -> dict[str, str]:
    """{path: the reader's error} for each video that cannot be opened and its first frame read.

    Cheap (no sampling, no resizing), so that extraction finds every broken clip at
    once, before any model runs. A reader opens the whole container index, so a
    truncated file fails here even when its first frame survived.
    """
    read_first_frame = _first_frame_reader(backend)
    broken = {}
    for path in tqdm(list(paths), desc="checking videos", unit="video", mininterval=5):
        try:
            read_first_frame(str(path))
        except Exception as e:  # whatever the reader raises is this file's problem
            broken[str(path)] = f"{type(e).__name__}: {e}".strip()
    return broken


def _first_frame_reader(backend: str):
    """A function that decodes frame 0 of a file; the backend's import fails here, once."""
    if backend == "decord":
        from decord import VideoReader

        def first_frame(path):
            reader = VideoReader(path, num_threads=1)
            if len(reader) == 0:
                raise ValueError("no frames")
            reader[0]

    elif backend == "torchcodec":
        from torchcodec.decoders import VideoDecoder

        def first_frame(path):
            VideoDecoder(path)[0]

    else:
        raise ValueError(f"video backend {backend!r}: use one of {BACKENDS}")
    return first_frame


def add_arguments(parser) -> None:
    """The frame-sampling options of the command-line entry points."""
    parser.add_argument("--backend", default=VideoSettings.backend, choices=BACKENDS)
    parser.add_argument("--fps", type=positive_float, default=VideoSettings.fps)
    parser.add_argument("--max-frames", type=at_least(2), default=VideoSettings.max_frames)
    parser.add_argument("--min-pixels", type=positive_int, default=VideoSettings.min_pixels)
    parser.add_argument("--max-pixels", type=positive_int, default=VideoSettings.max_pixels)
    parser.add_argument(
        "--frame-cache", dest="cache", help="folder that keeps decoded frames for later steps"
    )


def from_arguments(args) -> dict:
    keys = ("backend", "fps", "max_frames", "min_pixels", "max_pixels", "cache")
    return {key: getattr(args, key) for key in keys}


def for_processor(video: VideoSettings | dict | None, processor) -> VideoSettings:
    """The settings with the patch size of the model's own video processor (16 or 14)."""
    fields = video.__dict__ if isinstance(video, VideoSettings) else dict(video or {})
    return VideoSettings(
        **{**fields, "patch_size": getattr(processor.video_processor, "patch_size", 16)}
    )
