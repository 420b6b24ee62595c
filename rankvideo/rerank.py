"""Rerank first-stage candidates: score every (query, video) pair with a VLM.

The workflow splits the pairs into shards by video (each shard an independent
job), then merges the shards into one file per retriever (`rankvideo.pairs`).
Pairs are scored in video order: each video is decoded (or read from the frame
cache) once, and by default its prefix is encoded once for all of its queries
(`shared_prefix`). Scores are appended to `<output>.partial` as they come, so a
crashed or stopped job resumes where it stopped; a video that cannot be decoded
fails its pairs, the others are still scored and kept, and the job then fails
naming every such video.

Each record holds the four score fields and whatever else the reranker reads
(`VLMReranker.fields`: the exact scores beside served ones, Qwen3-VL-Reranker's bf16
sigmoid, what a profile's cut removed); the job logs their counts
(`rankvideo.pairs.log_counts`) and the merge carries the fields on.
"""

from __future__ import annotations

import argparse
import logging
import os
from itertools import groupby
from pathlib import Path

from tqdm import tqdm

from rankvideo import formats, logs
from rankvideo.elsewhere import in_engine_environment, is_vllm
from rankvideo.extract import scan_videos
from rankvideo.fingerprint import digest, file_stat
from rankvideo.options import positive_int
from rankvideo.pairs import (
    SCORE_FIELDS,
    candidate_pairs,
    check_shard,
    log_counts,
    shard_of,
    write_reranked,
)
from rankvideo.resumable import ResumableOutput
from rankvideo.scoring import VLMReranker
from rankvideo.teacher import judge_pairs, make_teacher
from rankvideo.video import (
    VideoDecodeError,
    add_arguments,
    decode_summary,
    from_arguments,
    load_video,
)

log = logging.getLogger(__name__)


def score_pairs(reranker, pairs, queries: dict, manifest: dict, output) -> list[dict]:
    """Score (video, query) pairs into `output` (JSON lines); returns the records."""
    unknown_q = sorted({q for _, q in pairs} - set(queries))
    unknown_v = sorted({v for v, _ in pairs} - set(manifest))
    if unknown_q or unknown_v:
        raise ValueError(
            f"candidates name {len(unknown_q)} unknown queries {unknown_q[:5]} and "
            f"{len(unknown_v)} videos without a file {unknown_v[:5]}"
        )
    keys = [(q, v) for v, q in pairs]
    fingerprint = {
        "scorer": reranker.identity(),
        "queries": digest({q: queries[q] for q, _ in keys}),
    }
    # each video is stamped on its own: a fixed or rebuilt video drops only its own pairs
    videos = {v: file_stat(manifest[v]) for v in dict.fromkeys(v for v, _ in pairs)}
    fields = getattr(reranker, "fields", SCORE_FIELDS)
    store = ResumableOutput(
        output, ("query_id", "doc_id"), fields, fingerprint=fingerprint,
        part="doc_id", parts=videos,
    )  # fmt: skip
    todo = [(v, q) for q, v in store.pending(keys)]
    failed: dict[str, str] = {}
    videos = 0
    with store, tqdm(total=len(todo), unit="pair", desc="scoring", mininterval=5) as progress:
        for video, group in groupby(todo, key=lambda pair: pair[0]):
            qids = [q for _, q in group]
            try:
                decoded = load_video(manifest[video], reranker.video)
            except VideoDecodeError as e:
                failed[video] = str(e)
                log.error("%s (%d pairs not scored)", e, len(qids))
                progress.update(len(qids))
                continue
            videos += 1
            try:
                scores = reranker.score_video(decoded, [queries[q] for q in qids])
            except FloatingPointError as e:
                raise FloatingPointError(
                    f"video {video}: {e} (the {len(store.done)} pairs scored before are kept "
                    f"in {store.partial})"
                ) from e
            store.add(
                [
                    {"query_id": q, "doc_id": video, **score}
                    for q, score in zip(qids, scores, strict=True)
                ]
            )
            progress.update(len(qids))
    mode = "shared prefix" if reranker.shared_prefix else "per pair"
    log.info(
        "scored %d pairs of %d videos (%s; %d pairs resumed); %s",
        len(todo),
        videos,
        mode,
        len(keys) - len(todo),
        decode_summary(),
    )
    if hasattr(reranker, "cache_summary"):  # the vllm engine: how much its prefix cache held
        log.info(reranker.cache_summary())
    if failed:
        raise RuntimeError(
            f"{len(failed)} videos could not be decoded, their pairs are not scored "
            f"(the {len(store.done)} scored pairs are kept in {store.partial}): "
            + "; ".join(list(failed.values())[:10])
        )
    records = store.finish(keys)
    log_counts(records, str(output))
    return records


def load_reranker(
    model: str,
    video: dict,
    profile: str | None,
    batch_size: int,
    device="auto",
    dtype="auto",
    shared_prefix: bool = True,
    answer_words=None,
    engine: dict | None = None,
    scores: str = "exact",
):
    """A VLMReranker on its engine (transformers, or vllm: rankvideo.vllm_engine);
    `profile`, `answer_words` and the sampling keys missing from `video` take the
    model's own scoring profile (see rankvideo.profile). `scores`: exact, or served
    (the RANKVIDEO release's served reading, emulated from the full vocabulary's
    log-probabilities: transformers only)."""
    if is_vllm(engine):
        if scores != "exact":
            raise ValueError(
                f"{model}: scores {scores!r} emulates vLLM's top-512 reading from the whole "
                "vocabulary's log-probabilities, which the vllm engine does not return; "
                "score this system with engine transformers"
            )
        from rankvideo.vllm_engine import VLLMReranker

        return VLLMReranker(
            model, video, profile, answer_words=answer_words, dtype=dtype, engine=engine
        )
    return VLMReranker(
        model_path=model,
        video=video,
        profile=profile,
        answer_words=answer_words,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        shared_prefix=shared_prefix,
        scores=scores,
    )


def with_frame_cache(scorer: dict, cache: dict) -> dict:
    """The scorer with the frame cache's folder and bound in its video settings (a model
    that reads videos; the caption reasoner reads captions)."""
    if "video" not in scorer:
        return scorer
    return scorer | {"video": scorer["video"] | cache}


@in_engine_environment
def rerank_shard(
    candidates: list,
    queries,
    manifest,
    output,
    shard: int,
    shards: int,
    scorer: dict,
    captions=None,
    engine: dict | None = None,
):
    """Score this shard's share of the union of the candidate maps.

    `scorer["kind"]` is `vlm` (a Qwen-VL yes/no reranker: `model`, `video`,
    `profile`, `batch_size`, `device`, `dtype`, `shared_prefix`, optionally
    `answer_words` and `scores`; an unset profile or answer words take the model's
    own) or
    `caption_reasoner` (the text teacher over the `captions` file: `model`, `asr`,
    `settings`). With `engine` vllm in another environment, the scoring runs there
    (rankvideo.elsewhere).
    """
    check_shard(shard, shards)
    pairs = read_pairs(candidates)
    mine = [(v, q) for v, q in pairs if shard_of(v, shards) == shard]
    log.info("shard %d/%d: %d of %d pairs", shard, shards, len(mine), len(pairs))
    query_text = formats.read_queries(queries)
    if scorer["kind"] == "caption_reasoner":
        teacher = make_teacher(scorer["model"], scorer["settings"], engine)
        texts, asr = formats.read_captions(captions), formats.read_asr(scorer.get("asr"))
        return judge_pairs(teacher, mine, query_text, texts, asr, output, as_scores=True)
    reranker = load_reranker(
        scorer["model"],
        scorer["video"],
        scorer["profile"],
        scorer["batch_size"],
        scorer["device"],
        scorer["dtype"],
        scorer["shared_prefix"],
        scorer.get("answer_words"),
        engine,
        scorer.get("scores", "exact"),
    )
    return score_pairs(reranker, mine, query_text, formats.read_manifest(manifest), output)


def read_pairs(candidates: list) -> list[tuple[str, str]]:
    """The (video, query) pairs of the candidate maps; none at all is an error naming them
    (a shard may have none, but an empty union means an empty map, not nothing to do)."""
    pairs = candidate_pairs(formats.read_candidates(c) for c in candidates)
    if not pairs:
        raise formats.FormatError(
            ", ".join(map(str, candidates)), None, "no candidate pairs: nothing to rerank"
        )
    return pairs


def system_name(model: str) -> str:
    """Output name of a model: its whole path, so results/stage1/model and
    results/stage2/model (or two hub ids of one name) never share an output file."""
    return os.path.normpath(model).strip(os.sep).replace(os.sep, "__")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Rerank first-stage candidates with a Qwen-VL model."
    )
    parser.add_argument("--model", required=True, help="hub id or folder (from_pretrained)")
    parser.add_argument(
        "--video2queries", required=True, help="candidate map {video_id: [query_id]}"
    )
    parser.add_argument("--query-mapping", required=True, help="queries TSV: query_id<TAB>text")
    parser.add_argument(
        "--video-dir", required=True, help="folder of videos named <video_id>.<ext>"
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument(
        "--name",
        help="system name for the output files (default: the model's path, '/' read as '__')",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument(
        "--profile",
        "--template",
        dest="profile",
        help="prompt profile: chat, short, sandwich, rankvideo-release, rankvideo-trained, "
        "qwen3-vl-reranker (default: the model's own, else chat)",
    )
    parser.add_argument(
        "--answer-words",
        nargs=2,
        metavar=("YES", "NO"),
        help="answer words (default: the model's own, else yes no)",
    )
    parser.add_argument(
        "--per-pair",
        action="store_true",
        help="a full forward pass per pair instead of one shared video prefix per video",
    )
    parser.add_argument(
        "--scores",
        choices=["exact", "served"],
        default="exact",
        help="exact: log P(yes) - log P(no) over the whole vocabulary; served: as the "
        "RANKVIDEO release's vLLM serving reads them (top 512 log-probabilities and the "
        "sampled token, 0.0 when yes or no is missing), the exact ones beside them",
    )
    add_arguments(parser)
    # frame settings left unset take the model's own profile (then the defaults)
    parser.set_defaults(fps=None, max_frames=None, min_pixels=None, max_pixels=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument(
        "--engine",
        choices=["transformers", "vllm"],
        default="transformers",
        help="vllm: served by vLLM (run with the interpreter of its environment, docs/engines.md)",
    )
    args = parser.parse_args(argv)
    logs.for_command_line()

    name = args.name or system_name(args.model)
    video = {k: v for k, v in from_arguments(args).items() if v is not None}
    reranker = load_reranker(
        args.model,
        video,
        args.profile,
        args.batch_size,
        args.device,
        args.dtype,
        shared_prefix=not args.per_pair,
        answer_words=args.answer_words,
        engine={"name": args.engine},
        scores=args.scores,
    )
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = score_pairs(
        reranker,
        read_pairs([args.video2queries]),
        formats.read_queries(args.query_mapping),
        scan_videos(args.video_dir),
        out / f"{name}.jsonl",
    )
    write_reranked(records, out / f"{name}.jsonl", out / f"{name}.run", name)


if __name__ == "__main__":
    main()
