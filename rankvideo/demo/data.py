"""The embedded demo: a deterministic synthetic video collection.

Short mp4 clips of one coloured shape moving in one direction on a black
background; queries describe a (colour, shape, motion) combination; a video is
relevant with grade 2 when all three attributes match and grade 1 when two do.
First-stage retrievers score the number of query attributes a clip matches among
those they can see, plus Gaussian noise of a retriever-specific level, so their
quality is known by construction. By default they see colour and shape, which one
frame shows, and not the direction of motion, which needs the clip: the blind
spot of frame-level and caption-level first stages that a video reranker is for
(docs/demo.md). Everything derives from one seed, and the archive is
byte-identical for the same settings.

The archive follows the original release's layout (`data/training_data.json`,
`data/videos2queriesranking_<retriever>.json`,
`data/first_stage_results/ranking_<retriever>.json`) plus the videos, queries,
qrels, the train/eval query split and reference captions (`data/captions.jsonl`,
the generator's true descriptions).
"""

from __future__ import annotations

import argparse
import gzip
import io
import itertools
import json
import logging
import math
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rankvideo import formats

log = logging.getLogger(__name__)

COLOURS = {
    "red": (230, 30, 30),
    "green": (30, 200, 30),
    "blue": (40, 60, 235),
    "yellow": (235, 225, 30),
    "magenta": (220, 40, 220),
    "cyan": (30, 215, 225),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
ATTRIBUTES = ("colour", "shape", "motion")


@dataclass(frozen=True)
class DemoSettings:
    seed: int = 0
    videos_per_combination: int = 3
    size: int = 64  # frame width and height in pixels
    frames: int = 16
    fps: int = 8
    eval_fraction: float = 0.33  # share of the query combinations held out for evaluation
    run_depth: int = 100  # documents per query in each first-stage run
    candidate_depth: int = 20  # depth of the released-format candidate maps
    training_depth: int = 20  # first-stage candidates per train query in training_data.json
    retrievers: dict = field(default_factory=lambda: {"strong": 0.9, "weak": 1.2})
    first_stage_sees: tuple = ("colour", "shape")  # attributes the first-stage retrievers score
    shape_size: tuple = (0.26, 0.3)  # radius of the shape, as a share of the frame side
    pretraining_clips: int = 6  # clips per combination in the tiny models' pretraining world


@dataclass(frozen=True)
class Clip:
    doc_id: str
    colour: str
    shape: str
    motion: str

    @property
    def attributes(self):
        return (self.colour, self.shape, self.motion)

    def description(self) -> str:
        return f"a {self.colour} {self.shape} moving {self.motion}"

    def caption(self) -> str:
        """The true caption: what a perfect captioner would write."""
        return self.description().capitalize() + "."


def grade(query: tuple, clip: Clip) -> int:
    """2 when colour, shape and motion all match, 1 when two of them do, else 0."""
    return {3: 2, 2: 1}.get(seen_matches(query, clip, ATTRIBUTES), 0)


def seen_matches(query: tuple, clip: Clip, seen) -> int:
    """How many of the attributes in `seen` the clip shares with the query."""
    pairs = zip(ATTRIBUTES, query, clip.attributes, strict=True)
    return sum(kind in seen and a == b for kind, a, b in pairs)


def _shape_mask(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r**2
    if shape == "square":
        half = r  # as wide as the circle: 16-pixel patches tell them apart by the corners
        return (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    # triangle pointing up: its half-width grows from 0 at the apex to r at the base
    top, bottom = cy - r, cy + r
    half_width = (y - top) / (bottom - top) * r
    return (y >= top) & (y <= bottom) & (np.abs(x - cx) <= half_width)


def render(clip: Clip, settings: DemoSettings, rng: np.random.Generator) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of the clip's shape crossing the frame."""
    size, steps = settings.size, settings.frames
    r = rng.uniform(*settings.shape_size) * size
    dx, dy = MOTIONS[clip.motion]
    travel = size - 2 * r - 4
    # start on the side the shape moves away from; the other coordinate is random
    start = np.array([size / 2, size / 2]) - np.array([dx, dy]) * travel / 2
    off_axis = rng.uniform(r + 2, size - r - 2)
    if dx:
        start[1] = off_axis
    else:
        start[0] = off_axis
    frames = np.zeros((steps, size, size, 3), dtype=np.uint8)
    colour = np.array(COLOURS[clip.colour], dtype=np.uint8)
    for t in range(steps):
        cx, cy = start + np.array([dx, dy]) * travel * t / (steps - 1)
        frames[t][_shape_mask(clip.shape, size, cx, cy, r)] = colour
    return frames


def encode_mp4(frames: np.ndarray, fps: int) -> bytes:
    """H.264 mp4 bytes from PyAV's bundled libx264, reproducible byte for byte.

    Constant quantiser, one encoder thread, explicit frame timestamps: with crf
    rate control or without timestamps, about one clip in a hundred came out
    different between runs.
    """
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"qp": "12", "threads": "1"})
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def make_collection(settings: DemoSettings):
    """Clips, queries and their split, qrels and first-stage runs, all from the seed."""
    unknown = set(settings.first_stage_sees) - set(ATTRIBUTES)
    if unknown or not settings.first_stage_sees:
        raise ValueError(
            f"demo.first_stage_sees {list(settings.first_stage_sees)}: name one or more of "
            f"{list(ATTRIBUTES)}"
        )
    rng = np.random.default_rng(settings.seed)
    combinations = list(itertools.product(COLOURS, SHAPES, MOTIONS))
    clips = [
        Clip(f"v{i:04d}", *combo)
        for i, combo in enumerate(
            c for c in combinations for _ in range(settings.videos_per_combination)
        )
    ]
    queries = {f"q{i:03d}": combo for i, combo in enumerate(combinations)}
    order = rng.permutation(len(queries))
    n_eval = max(1, round(settings.eval_fraction * len(queries)))
    qids = list(queries)
    eval_ids = sorted(qids[i] for i in order[:n_eval])
    train_ids = sorted(qids[i] for i in order[n_eval:])
    qrels = {
        qid: {c.doc_id: g for c in clips if (g := grade(combo, c)) > 0}
        for qid, combo in queries.items()
    }
    runs = {}
    for name, noise in settings.retrievers.items():
        run = {}
        for qid, combo in queries.items():
            scores = {
                c.doc_id: seen_matches(combo, c, settings.first_stage_sees)
                + noise * rng.standard_normal()
                for c in clips
            }
            top = formats.ranked(scores)[: settings.run_depth]
            run[qid] = {d: round(float(scores[d]), 6) for d in top}
        runs[name] = run
    return clips, queries, train_ids, eval_ids, qrels, runs


def _teacher_record(qid, combo, clip, rel, first_rng):
    """A released-format training record; the 'teacher' is a noisy oracle here."""
    matches = [a == b for a, b in zip(combo, clip.attributes, strict=True)]
    checks = ", ".join(
        f"{kind} {'matches' if ok else 'differs'}"
        for kind, ok in zip(("colour", "shape", "motion"), matches, strict=True)
    )
    answer = "yes" if rel > 0 else "no"
    logit = 3.0 * (sum(matches) - 1.5) + first_rng.normal(0.0, 0.5)
    return {
        "query_id": qid,
        "query": "a {} {} moving {}".format(*combo),
        "doc_id": clip.doc_id,
        "videos": [f"videos/{clip.doc_id}.mp4"],
        "true_label": int(rel > 0),
        "teacher_p_yes": round(1.0 / (1.0 + math.exp(-logit)), 6),
        "evidence": {"caption": clip.caption(), "asr": ""},
        "teacher_reasoning": f"The caption shows {clip.description()}: {checks}. Answer: {answer}",
    }


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(payload), 0o644, 0
    tar.addfile(info, io.BytesIO(payload))


def build_archive(settings: DemoSettings, archive_path) -> dict:
    """Write the demo archive; returns counts for the log."""
    clips, queries, train_ids, eval_ids, qrels, runs = make_collection(settings)
    rng = np.random.default_rng([settings.seed, 1])
    files: dict[str, bytes] = {}

    def text(lines):
        return "".join(f"{line}\n" for line in lines).encode()

    files["data/queries.tsv"] = text(
        f"{q}\t{'a {} {} moving {}'.format(*c)}" for q, c in queries.items()
    )
    files["data/qrels.txt"] = text(
        f"{q} 0 {d} {g}" for q, docs in qrels.items() for d, g in docs.items()
    )
    files["data/splits/train.txt"] = text(train_ids)
    files["data/splits/eval.txt"] = text(eval_ids)
    by_id = {c.doc_id: c for c in clips}
    for name, run in runs.items():
        files[f"data/first_stage_results/ranking_{name}.json"] = _json_bytes(run)
        eval_run = {q: run[q] for q in eval_ids}
        candidates = formats.invert_run(eval_run, settings.candidate_depth)
        files[f"data/videos2queriesranking_{name}.json"] = _json_bytes(candidates)
    first = runs[next(iter(runs))]
    records = [
        _teacher_record(q, queries[q], by_id[d], qrels[q].get(d, 0), rng)
        for q in train_ids
        for d in formats.ranked(first[q])[: settings.training_depth]
    ]
    files["data/training_data.json"] = text(_json_line(r) for r in records)
    # the generator's true descriptions: what a perfect captioner would write
    files["data/captions.jsonl"] = text(
        _json_line({"doc_id": c.doc_id, "text": c.caption()}) for c in clips
    )
    for clip in clips:
        frames = render(
            clip, settings, np.random.default_rng([settings.seed, 2, int(clip.doc_id[1:])])
        )
        files[f"data/videos/{clip.doc_id}.mp4"] = encode_mp4(frames, settings.fps)

    archive_path = Path(archive_path)
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(archive_path, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
    ):
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(files):
                _add(tar, name, files[name])
    counts = {
        "videos": len(clips),
        "queries": len(queries),
        "train_queries": len(train_ids),
        "eval_queries": len(eval_ids),
        "training_records": len(records),
        "retrievers": len(runs),
    }
    log.info("wrote %s: %s", archive_path, counts)
    return counts


def _json_line(record) -> str:
    return json.dumps(record)


def _json_bytes(data) -> bytes:
    return (json.dumps(data, indent=1) + "\n").encode()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="resources/demo/data.tar.gz")
    parser.add_argument("--seed", type=int, default=DemoSettings.seed)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build_archive(DemoSettings(seed=args.seed), args.output)


if __name__ == "__main__":
    main()
