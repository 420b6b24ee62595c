"""A MultiVENT-scale plan: the index files a dry run needs, without any video.

`snakemake -n` at cluster scale needs only what the workflow reads while it
plans: the inputs of the `extract` rule (queries, qrels, query splits and one
first-stage run per retriever) and a config. This module writes those files at
MultiVENT 2.0 scale (about 110k videos, 2.5k evaluation queries, 1,000
first-stage candidates per query) with synthetic ids and scores, an empty video
folder (planning never lists it; a real run needs `<doc_id>.mp4` files there),
and `config.yaml` that points at them with real model names and 256 shards for
captions, teacher labels and reranking:

    python -m rankvideo.scale_plan --out /tmp/multivent
    snakemake -n --configfile /tmp/multivent/config.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from rankvideo import formats

RETRIEVER = "AV_OmniEmbed"


def video_ids(count: int) -> list[str]:
    return [f"mv{i:06d}" for i in range(count)]


def query_ids(count: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(count)]


def ranked_candidates(queries, videos, depth: int, rng) -> dict[str, list[str]]:
    """Each query's `depth` distinct candidates, best first (slices of one permutation)."""
    order = rng.permutation(len(videos))
    starts = rng.integers(0, len(videos), size=len(queries))
    steps = np.arange(depth)
    return {
        q: [videos[i] for i in order[(start + steps) % len(videos)]]
        for q, start in zip(queries, starts, strict=True)
    }


def first_stage_run(ranking: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """The release's first-stage format, `{query_id: {doc_id: score}}`, scores descending."""
    return {
        query: {doc: round(1 - rank / len(docs), 4) for rank, doc in enumerate(docs)}
        for query, docs in ranking.items()
    }


def judged(ranking: dict[str, list[str]], relevant: int, rng) -> dict[str, dict[str, int]]:
    """Qrels: `relevant` judged videos per query (grade 1 or 2), drawn from its candidates."""
    return {
        query: {
            str(doc): int(rng.integers(1, 3))
            for doc in rng.choice(docs, size=min(relevant, len(docs)), replace=False)
        }
        for query, docs in ranking.items()
    }


def plan_config(out: Path, shards: int, depth: int, processes: int) -> dict:
    """Config merged over config.yaml: the plan's files, real models, cluster-scale shards."""
    return {
        "data": {
            "archive": None,
            "retrievers": [RETRIEVER],
            "videos": str(out / "videos"),
            "queries": str(out / "queries.tsv"),
            "qrels": str(out / "qrels.txt"),
            "first_stage_dir": str(out),
            "train_queries": str(out / "train.txt"),
            "eval_queries": str(out / "eval.txt"),
        },
        "models": {
            "vlm": "Qwen/Qwen3-VL-8B-Instruct",
            "teacher": "jhu-clsp/rank1-7b",
            "captioner": "Qwen/Qwen3-VL-8B-Instruct",
        },
        # paper-scale frames; no frame cache (110k videos x up to 75 MB of frames)
        "video": {"max_frames": 32, "min_pixels": 131072, "max_pixels": 786432, "cache": None},
        "captions": {"max_new_tokens": 256, "shards": shards},
        "teacher": {"dataset": "multivent", "max_reasoning_tokens": 512, "shards": shards},
        "stage1": {"captions": "evidence", "method": "lora", "processes": processes},
        "stage2": {"method": "lora", "processes": processes},
        "prompt": {"template": "chat"},
        # the paper's systems; rankvideo_no_distill would add a second 8B training
        "rerank": {
            "depth": depth,
            "shards": shards,
            "systems": ["base", "caption_reasoner", "rankvideo"],
        },
    }


def write_plan(
    out,
    videos: int = 110_000,
    queries: int = 2_500,
    train_queries: int = 500,
    candidates: int = 1_000,
    shards: int = 256,
    relevant: int = 5,
    processes: int = 4,
    seed: int = 0,
) -> Path:
    """Write the plan's index files and config under `out`; returns the config's path."""
    out = Path(out).resolve()
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    evals, trains = query_ids(queries, "test"), query_ids(train_queries, "train")
    ranking = ranked_candidates(evals + trains, video_ids(videos), candidates, rng)
    formats.write_queries(out / "queries.tsv", {q: f"event query {q}" for q in ranking})
    formats.write_ids(out / "eval.txt", evals)
    formats.write_ids(out / "train.txt", trains)
    formats.write_qrels(out / "qrels.txt", judged(ranking, relevant, rng))
    formats.write_run_json(out / f"ranking_{RETRIEVER}.json", first_stage_run(ranking))
    config = plan_config(out, shards, candidates, processes)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out / "config.yaml"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the index files and config")
    parser.add_argument("--videos", type=int, default=110_000, help="collection size")
    parser.add_argument("--queries", type=int, default=2_500, help="evaluation queries")
    parser.add_argument("--train-queries", type=int, default=500, help="training queries")
    parser.add_argument("--candidates", type=int, default=1_000, help="first-stage depth")
    parser.add_argument("--shards", type=int, default=256, help="captions/teacher/rerank jobs")
    parser.add_argument("--processes", type=int, default=4, help="training GPUs per stage")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = write_plan(
        args.out,
        videos=args.videos,
        queries=args.queries,
        train_queries=args.train_queries,
        candidates=args.candidates,
        shards=args.shards,
        processes=args.processes,
        seed=args.seed,
    )
    print(config)


if __name__ == "__main__":
    main()
