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
    cache_gb: float | None = 20.0  # most the cache holds, least recently used out first

    def sampling(self) -> dict:
        """Every setting that decides the frames (all but where and how much is cached)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("cache", "cache_gb")}

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
            _touch(cached)
            return entry["frames"].float(), entry["metadata"]
        except Exception as e:  # an unreadable entry is decoded again and replaced
            log.warning("%s: unreadable frame cache entry %s (%s): decoding again", path, cached, e)
    frames, metadata = _decode(path, settings)
    DECODES["decoded"] += 1
    if cached is not None:
        _store(cached, {"frames": frames, "metadata": metadata})
        if settings.cache_gb is not None:
            _bound(settings.cache, settings.cache_gb).stored(cached)
    return frames.float(), metadata


def _touch(entry: Path) -> None:
    """Mark an entry used now: eviction takes the least recently used first."""
    try:
        os.utime(entry)
    except OSError:  # evicted by another job meanwhile: nothing to mark
        pass


class CacheBound:
    """Keeps a frame cache folder under `gb` gigabytes: after a store that takes it over,
    the least recently used entries (oldest modification time: reads touch their entry)
    are removed until it is at 90 % of the bound.

    Each process counts what it stores and scans the folder again after every 5 % of the
    bound it has written, so parallel jobs overshoot by at most that much each.
    """

    def __init__(self, folder, gb: float):
        self.folder, self.limit = Path(folder), int(gb * 2**30)
        self.total: int | None = None
        self.unscanned = 0
        self.evicted = 0

    def entries(self) -> list[tuple[int, int, Path]]:
        """(last use, bytes, path) of every entry; one a parallel job removed is skipped."""
        found = []
        for path in self.folder.glob("*/*.pt"):
            try:
                meta = path.stat()
            except OSError:
                continue
            found.append((meta.st_mtime_ns, meta.st_size, path))
        return found

    def stored(self, entry: Path) -> None:
        try:
            size = entry.stat().st_size
        except OSError:  # another job evicted it already: nothing of it to count
            return
        self.unscanned += size
        if self.total is None or self.unscanned > self.limit // 20:
            self.total, self.unscanned = sum(s for _, s, _ in self.entries()), 0
        else:
            self.total += size
        if self.total > self.limit:
            self.evict()

    def evict(self) -> None:
        entries = sorted(self.entries())
        total = sum(s for _, s, _ in entries)
        for _, size, path in entries:
            if total <= 0.9 * self.limit:
                break
            path.unlink(missing_ok=True)
            total -= size
            self.evicted += 1
        self.total, self.unscanned = total, 0
        log.info(
            "frame cache %s: %d entries evicted so far, %.1f MB kept (bound %.1f MB)",
            self.folder, self.evicted, total / 2**20, self.limit / 2**20,
        )  # fmt: skip


_BOUNDS: dict[tuple[str, float], CacheBound] = {}


def _bound(folder: str, gb: float) -> CacheBound:
    key = (str(folder), gb)
    if key not in _BOUNDS:
        _BOUNDS[key] = CacheBound(folder, gb)
    return _BOUNDS[key]


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
    # a file reached by several names (links, or hard links) is decoded once: the same
    # bytes give the same verdict
    verdicts: dict[tuple, str | None] = {}
    for path in tqdm(list(paths), desc="checking videos", unit="video", mininterval=5):
        try:
            meta = os.stat(path)
            same = (meta.st_dev, meta.st_ino, meta.st_size, meta.st_mtime_ns)
        except OSError as e:
            broken[str(path)] = f"{type(e).__name__}: {e}".strip()
            continue
        if same not in verdicts:
            try:
                read_first_frame(str(path))
                verdicts[same] = None
            except Exception as e:  # whatever the reader raises is this file's problem
                verdicts[same] = f"{type(e).__name__}: {e}".strip()
        if verdicts[same] is not None:
            broken[str(path)] = verdicts[same]
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
    parser.add_argument(
        "--frame-cache-gb",
        dest="cache_gb",
        type=positive_float,
        default=VideoSettings.cache_gb,
        help="most gigabytes the frame cache holds (least recently used out first)",
    )


def from_arguments(args) -> dict:
    keys = ("backend", "fps", "max_frames", "min_pixels", "max_pixels", "cache", "cache_gb")
    return {key: getattr(args, key) for key in keys}


def for_processor(video: VideoSettings | dict | None, processor) -> VideoSettings:
    """The settings with the patch size of the model's own video processor (16 or 14)."""
    fields = video.__dict__ if isinstance(video, VideoSettings) else dict(video or {})
    return VideoSettings(
        **{**fields, "patch_size": getattr(processor.video_processor, "patch_size", 16)}
    )
