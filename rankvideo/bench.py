"""Benchmark of reranker scoring: per-pair forward passes against the shared video prefix.

On one model and machine, in one process: for each video length (frames) and
each K (queries per video), the same videos and queries are scored both ways;
the table gives pairs per second, the cost of K queries relative to one, the
shared path's speed-up and how many times each video was decoded (frames are
decoded once and reused by both paths and every K, as in the workflow).

The videos are synthetic clips written to mp4 and decoded for real; the frame
size is chosen so that a clip of the shortest length has enough visual tokens
(the prefix then dominates the prompt, as a real 32-frame video does).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rankvideo import logs
from rankvideo.elsewhere import VLLM_DEFAULTS, in_engine_environment
from rankvideo.video import DECODES, VideoSettings, load_video

log = logging.getLogger(__name__)

COLOURS = ["red", "green", "blue", "yellow", "cyan", "magenta"]
SHAPES = ["circle", "square", "triangle"]
MOTIONS = ["left", "right", "up", "down"]

# The published shapes of Qwen/Qwen3-VL-8B-Instruct (its config.json): with random
# weights it costs what the real model costs, so GPU timings need no download.
QWEN3_VL_8B = {
    "architecture": "qwen3_vl",
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "layers": 36,
    "num_heads": 32,
    "kv_heads": 8,
    "head_dim": 128,
    "tie_embeddings": False,
    "mrope_section": [24, 20, 20],
    "vision_depth": 27,
    "vision_width": 1152,
    "vision_intermediate": 4304,
    "vision_heads": 16,
    "deepstack_indexes": [8, 16, 24],
    "min_pixels": 128 * 32 * 32,
    "max_pixels": 768 * 32 * 32,
}
# The smallest shapes vLLM's CPU kernels take (head_dim 64): the engines compared on CPU
TINY_QWEN3_VL_64 = {
    "architecture": "qwen3_vl", "hidden_size": 128, "layers": 2, "num_heads": 2,
    "mrope_section": [8, 12, 12], "vision_depth": 2, "vision_width": 32,
    "deepstack_indexes": [1], "min_pixels": 4096, "max_pixels": 4096,
}  # fmt: skip
RANDOM_SHAPES = {"qwen3-vl-8b": QWEN3_VL_8B, "tiny-qwen3-vl-64": TINY_QWEN3_VL_64}


def random_model(name: str, folder: Path, device: str) -> str:
    """Build (once) a randomly initialised model of a released model's shapes."""
    import torch

    from rankvideo.demo.tiny_models import build_vlm
    from rankvideo.models import pick_device

    folder = Path(folder)
    if not (folder / "config.json").exists():
        where = pick_device(device)
        dtype = torch.bfloat16 if where.type == "cuda" else torch.float32
        build_vlm(folder, RANDOM_SHAPES[name], seed=0, device=where, dtype=dtype)
    return str(folder)


@dataclass
class BenchSettings:
    frames: list[int] = field(default_factory=lambda: [8, 64])  # video lengths (frames read)
    queries_per_video: list[int] = field(default_factory=lambda: [1, 5, 20])  # K
    size: int = 384  # frame width = height, pixels (a multiple of 32)
    videos: int = 2  # clips per length; every measurement scores all of them
    template: str = "short"
    device: str = "auto"
    dtype: str = "auto"
    engines: list[str] = field(default_factory=lambda: ["transformers"])  # and/or vllm
    vllm: dict = field(default_factory=lambda: dict(VLLM_DEFAULTS))  # the config's vllm:


def queries(k: int) -> list[str]:
    """K distinct queries of three different lengths."""
    triples = itertools.product(SHAPES, MOTIONS, COLOURS)
    tails = ["", " across the frame", " across a black background, slowly and steadily"]
    return [
        f"a {colour} {shape} moving {motion}{tails[i % 3]}"
        for i, (shape, motion, colour) in zip(range(k), itertools.cycle(triples))
    ]


def write_clips(folder: Path, frames: int, size: int, count: int) -> list[Path]:
    """`count` mp4 clips of `frames` frames: a coloured square crossing a noisy frame."""
    from rankvideo.demo.data import encode_mp4

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(frames)
    paths = []
    for i in range(count):
        video = rng.integers(0, 64, size=(frames, size, size, 3), dtype=np.uint8)
        for t in range(frames):
            x = int((size - size // 4) * t / max(frames - 1, 1))
            video[t, size // 3 : size // 3 + size // 4, x : x + size // 4] = (200, 40 * i, 60)
        path = folder / f"clip{frames}_{i}_{size}.mp4"
        if not path.exists():  # the clips depend only on (frames, i, size): reuse them
            path.write_bytes(encode_mp4(video, fps=8))
        paths.append(path)
    return paths


def timed(reranker, decoded: list, qs: list[str], shared: bool) -> tuple[float, list[float]]:
    """Seconds to score every video against `qs`, and the scores."""
    reranker.shared_prefix = shared
    scores = []
    start = time.perf_counter()
    for video in decoded:
        scores += [s["logit_delta"] for s in reranker.score_video(video, qs)]
    return time.perf_counter() - start, scores


def video_settings(settings: BenchSettings, frames: int) -> VideoSettings:
    pixels = settings.size**2
    return VideoSettings(
        fps=8.0, min_frames=frames, max_frames=frames, min_pixels=pixels, max_pixels=pixels
    )


def decoded_clips(reranker, settings: BenchSettings, frames: int, work: Path):
    """(decoded clips, decodes per clip, visual tokens per clip)."""
    paths = write_clips(Path(work) / "videos", frames, settings.size, settings.videos)
    before = DECODES["decoded"]
    decoded = [load_video(p, reranker.video) for p in paths]
    decodes = (DECODES["decoded"] - before) / len(paths)
    grid = decoded[0][0].shape  # (T, C, H, W) after sampling
    merged = 2 * reranker.video.patch_size  # a visual token covers 2 x 2 patches, 2 frames
    return decoded, decodes, grid[0] // 2 * (grid[2] // merged) * (grid[3] // merged)


@in_engine_environment
def vllm_timings(model: str, settings: dict, work: str, engine: dict) -> dict:
    """In vLLM's environment: per frames and K, seconds and scores of the vllm engine
    (one request per pair, the video prefix from the prefix cache)."""
    from rankvideo.vllm_engine import VLLMReranker

    settings = BenchSettings(**settings)
    timings = {}
    for frames in settings.frames:
        reranker = VLLMReranker(
            model, video=video_settings(settings, frames), profile=settings.template,
            dtype=settings.dtype, engine=engine,
        )  # fmt: skip
        decoded, _, _ = decoded_clips(reranker, settings, frames, work)
        timed(reranker, decoded[:1], queries(1), shared=True)  # warm-up, not timed
        for k in settings.queries_per_video:
            timings[f"{frames}:{k}"] = timed(reranker, decoded, queries(k), shared=True)
        log.info("vllm engine, %d frames: %s", frames, reranker.cache_summary())
    return timings


def run(model: str, settings: BenchSettings, work: Path) -> list[dict]:
    from rankvideo.prompt import get_profile
    from rankvideo.scoring import VLMReranker

    if not get_profile(settings.template).video_first:
        raise ValueError(
            f"bench template {settings.template!r} puts the query before the video: there "
            "is no prefix to share; use a video-first profile (chat, short, rankvideo-trained)"
        )

    served = {}
    if "vllm" in settings.engines:
        served = vllm_timings(
            model, dataclasses.asdict(settings), str(work), {**settings.vllm, "name": "vllm"}
        )
    rows = []
    for frames in settings.frames:
        reranker = VLMReranker(
            model,
            video=video_settings(settings, frames),
            profile=settings.template,
            batch_size=max(settings.queries_per_video),
            device=settings.device,
            dtype=settings.dtype,
        )
        decoded, decodes, visual = decoded_clips(reranker, settings, frames, work)
        timed(reranker, decoded[:1], queries(1), shared=True)  # warm-up, not timed
        timed(reranker, decoded[:1], queries(1), shared=False)
        base = {}
        for k in settings.queries_per_video:
            results = {
                mode: timed(reranker, decoded, queries(k), mode == "shared")
                for mode in ("per_pair", "shared")
            }
            if served:
                results["vllm_prefix_cache"] = served[f"{frames}:{k}"]
            seconds = {mode: secs for mode, (secs, _) in results.items()}
            for mode, secs in seconds.items():
                # every path must agree with per_pair; bfloat16 on a GPU rounds differently
                diff = max(
                    abs(a - b)
                    for a, b in zip(results["per_pair"][1], results[mode][1], strict=True)
                )
                pairs = k * len(decoded)
                base.setdefault(mode, secs)
                rows.append(
                    {
                        "engine": "vllm" if mode.startswith("vllm") else "transformers",
                        "frames": frames,
                        "visual_tokens": visual,
                        "queries_per_video": k,
                        "mode": mode,
                        "pairs": pairs,
                        "seconds": round(secs, 4),
                        "pairs_per_s": round(pairs / secs, 3),
                        "cost_vs_k1": round(secs / base[mode], 3),
                        "speedup": round(seconds["per_pair"] / seconds[mode], 2),
                        "decodes_per_video": decodes,
                        "max_score_diff": round(diff, 6),
                    }
                )
                log.info("%s", rows[-1])
    return rows


def write_table(rows: list[dict], path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for frames in sorted({r["frames"] for r in rows}):
        for mode, style in (("per_pair", "--o"), ("shared", "-s"), ("vllm_prefix_cache", ":^")):
            sel = [r for r in rows if r["frames"] == frames and r["mode"] == mode]
            if not sel:
                continue
            tokens = sel[0]["visual_tokens"]
            ax.plot(
                [r["queries_per_video"] for r in sel],
                [r["pairs_per_s"] for r in sel],
                style,
                label=f"{mode}, {frames} frames ({tokens} visual tokens)",
            )
    ax.set(xlabel="queries per video (K)", ylabel="pairs per second", yscale="log")
    ax.set_title("Reranker scoring throughput")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bench(model: str, settings: BenchSettings, table, figure, work) -> list[dict]:
    rows = run(model, settings, Path(work))
    write_table(rows, table)
    plot(rows, figure)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="Per-pair vs shared-prefix scoring throughput.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="hub id or folder (from_pretrained)")
    which.add_argument(
        "--random-shapes",
        choices=sorted(RANDOM_SHAPES),
        help="a randomly initialised model of these published shapes, built in OUTPUT_DIR",
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--frames", type=int, nargs="+", default=BenchSettings().frames)
    parser.add_argument("--queries-per-video", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--size", type=int, default=BenchSettings.size)
    parser.add_argument("--videos", type=int, default=BenchSettings.videos)
    parser.add_argument("--template", default=BenchSettings.template)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument(
        "--engines", nargs="+", choices=["transformers", "vllm"], default=["transformers"],
        help="vllm adds the vllm engine's rows (transformers' are always measured)",
    )  # fmt: skip
    parser.add_argument(
        "--vllm-python", help="interpreter of the environment with vLLM (default: this one)"
    )
    args = parser.parse_args(argv)
    logs.for_command_line()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = BenchSettings(
        args.frames,
        args.queries_per_video,
        args.size,
        args.videos,
        args.template,
        args.device,
        args.dtype,
        args.engines,
        {**VLLM_DEFAULTS, "python": args.vllm_python},
    )
    model = args.model or random_model(args.random_shapes, out / args.random_shapes, args.device)
    bench(model, settings, out / "scoring.tsv", out / "scoring.png", out / "work")


if __name__ == "__main__":
    main()
