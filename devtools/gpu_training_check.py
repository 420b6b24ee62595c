"""GPU checks of the training paths that the CPU cannot run (docs/training.md).

1. The QLoRA chain on the tiny model: stage 1 (4-bit base + adapter) -> stage 2 from
   that adapter -> the trained adapter loaded by `VLMReranker` and scored with and
   without the shared prefix.
2. Time per step and peak GPU memory of both stages at the paper's model size: a
   randomly initialised Qwen3-VL-8B (`bench.QWEN3_VL_8B`) trained with LoRA, stage 1
   on 4 captions of 192 words per step, stage 2 on groups of 1 positive + 7
   negatives.

    python devtools/gpu_training_check.py --videos CLIPS --out OUT [--method qlora]

CLIPS holds mp4 clips (at least 4); OUT gets the models and `report.json`. On a CPU,
`--method lora --shapes small` runs the same code quickly (a dry run of the script).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import torch

from rankvideo import bench, formats
from rankvideo.demo import tiny_models
from rankvideo.scoring import VLMReranker
from rankvideo.train_perception import train_perception
from rankvideo.train_reranker import train_reranker
from rankvideo.video import VideoSettings

log = logging.getLogger("gpu_check")
TINY = {
    "architecture": "qwen3_vl",
    "hidden_size": 64,
    "layers": 2,
    "num_heads": 4,
    "mrope_section": [2, 3, 3],
    "vision_depth": 2,
    "vision_width": 32,
    "deepstack_indexes": [1],
    "min_pixels": 4096,
    "max_pixels": 4096,
}
QUERIES = ["a red square moving right", "a green square moving right", "a cyan triangle"]


def write_records(clips: list[Path], folder: Path) -> tuple[Path, Path]:
    """Caption records (stage 1) and ranking records (stage 2) over the clips."""
    captions = folder / "captions.jsonl"
    with open(captions, "w") as f:
        for i, clip in enumerate(clips):
            caption = f"A square moving right, clip {i}."
            f.write(json.dumps({"doc_id": clip.stem, "videos": [str(clip)], "caption": caption}))
            f.write("\n")
    ranking = folder / "ranking.jsonl"
    with open(ranking, "w") as f:
        for q, query in enumerate(QUERIES):
            for i, clip in enumerate(clips):
                record = {
                    "query_id": f"q{q}",
                    "query": query,
                    "doc_id": clip.stem,
                    "videos": [str(clip)],
                    "true_label": int(i == q % len(clips)),
                    "teacher_p_yes": 0.9 if i == q % len(clips) else 0.2,
                }
                f.write(json.dumps(record) + "\n")
    return captions, ranking


def stage(
    train,
    out: Path,
    model: str,
    data: Path,
    method: str,
    video: dict,
    keep_model: bool = True,
    **extra,
) -> dict:
    settings = {
        "model": model,
        "train_data": str(data),
        "output_dir": str(out / "model"),
        "work_dir": str(out / "work"),
        "log": str(out / "train_log.tsv"),
        "method": method,
        "video": video,
        "learning_rate": 1e-4,
        "batch_size": 1,
        "gradient_accumulation": 1,
        "warmup_steps": 0,
        "save_every": 1000,
        **extra,
    }
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train(settings)
    seconds = time.perf_counter() - start
    if not keep_model:  # a merged 8B model is 17.5 GB: four would fill a 64 GB disk
        shutil.rmtree(out / "model")
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {"seconds": round(seconds, 1), "peak_gib": peak and round(peak, 1)}


def chain(out: Path, clips, captions: Path, ranking: Path, method: str) -> dict:
    small = {"fps": 2.0, "max_frames": 8, "min_pixels": 4096, "max_pixels": 4096, "cache": None}
    tiny = tiny_models.build_vlm(out / "tiny", TINY)
    s1 = stage(train_perception, out / "stage1", str(tiny), captions, method, small,
               max_steps=10, prompt="Describe this video.")  # fmt: skip
    s2 = stage(train_reranker, out / "stage2", str(out / "stage1" / "model"), ranking,
               method, small, max_steps=10, template="short")  # fmt: skip
    reranker = VLMReranker(str(out / "stage2" / "model"), VideoSettings(**small), "short")
    paths = [str(c) for c in clips]
    queries, videos = QUERIES * len(paths), [p for p in paths for _ in QUERIES]
    shared = reranker.score_batch(queries, videos)
    reranker.shared_prefix = False
    single = reranker.score_batch(queries, videos)
    pairs = zip(shared, single, strict=True)
    diff = max(abs(a["logit_delta"] - b["logit_delta"]) for a, b in pairs)
    return {
        "method": method,
        "stage1": s1,
        "stage2": s2,
        "stage2_files": sorted(p.name for p in (out / "stage2" / "model").iterdir()),
        "loaded_as": type(reranker.model).__name__,
        "pairs_scored": len(shared),
        "shared_vs_per_pair_max_diff": round(diff, 5),
    }


def full_size(out: Path, ranking: Path, shapes_name: str, size: int, steps: int) -> dict:
    """LoRA stages 1 and 2 on a random model of the named shapes: seconds per step, memory."""
    shapes = TINY if shapes_name == "small" else bench.RANDOM_SHAPES[shapes_name]
    if shapes_name == "small":
        model = str(tiny_models.build_vlm(out / "tiny-timing", TINY))
    else:
        model = bench.random_model(shapes_name, out / shapes_name, "auto")
    pixels = size * size
    full = {"fps": 8.0, "min_frames": 8, "max_frames": 8, "min_pixels": pixels,
            "max_pixels": pixels, "cache": None}  # fmt: skip
    long_captions = out / "long_captions.jsonl"  # the paper's captions: a few hundred tokens
    sentence = "A coloured square crosses a dark, noisy frame from left to right at a steady pace. "
    with open(long_captions, "w") as f:
        for clip in [r for _, r in formats.read_jsonl(out / "captions.jsonl")]:
            f.write(json.dumps({**clip, "caption": sentence * 12}) + "\n")
    stage1 = {
        n: stage(
            train_perception,
            out / f"s1full{n}",
            model,
            long_captions,
            "lora",
            full,
            max_steps=n,
            batch_size=4,
            keep_model=False,
        )
        for n in (1, 1 + steps)
    }
    negatives = 7
    timings = {
        n: stage(
            train_reranker,
            out / f"full{n}",
            model,
            ranking,
            "lora",
            full,
            max_steps=n,
            template="chat",
            num_negatives=negatives,
            keep_model=False,
        )
        for n in (1, 1 + steps)  # the difference removes loading, the first step and saving
    }
    return {
        "shapes": shapes_name,
        "hidden_size": shapes["hidden_size"],
        "pairs_per_step": 1 + negatives,
        "frames": 8,
        "frame_pixels": pixels,
        "seconds_per_step": round(
            (timings[1 + steps]["seconds"] - timings[1]["seconds"]) / steps, 2
        ),
        "runs": timings,
        "stage1_captions_per_step": 4,
        "stage1_caption_tokens": len(sentence.split()) * 12,
        "stage1_seconds_per_step": round(
            (stage1[1 + steps]["seconds"] - stage1[1]["seconds"]) / steps, 2
        ),
        "stage1_runs": stage1,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--method", default="qlora", choices=["qlora", "lora"])
    parser.add_argument("--shapes", default="qwen3-vl-8b", choices=["qwen3-vl-8b", "small"])
    parser.add_argument("--size", type=int, default=448, help="frame side at full size")
    parser.add_argument("--steps", type=int, default=6, help="stage-2 steps at full size")
    parser.add_argument("--parts", nargs="+", default=["chain", "full-size"],
                        choices=["chain", "full-size"])  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = sorted(Path(args.videos).glob("*.mp4"))[:4]
    captions, ranking = write_records(clips, out)
    report = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}

    if "chain" in args.parts:  # 1. the (Q)LoRA chain on the tiny model
        try:
            report["chain"] = chain(out, clips, captions, ranking, args.method)
        except Exception as e:  # report it and go on to the timing
            log.exception("the %s chain failed", args.method)
            report["chain"] = {"method": args.method, "error": f"{type(e).__name__}: {e}"}
        log.info("%s", report["chain"])
    if "full-size" in args.parts:  # 2. stage 2 at full size: seconds per step, memory
        report["full_size_stage2"] = full_size(out, ranking, args.shapes, args.size, args.steps)
        log.info("%s", report["full_size_stage2"])
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
