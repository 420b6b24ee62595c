"""The captions step: captions of the videos that training and evaluation need.

`caption_videos` captions decoded videos resumably (each video decoded once),
`caption_shard` is the workflow's job, on the engine the config names
(`make_captioner`: transformers, or vllm). The model is
`rankvideo.captioner.Captioner`. Output: JSON lines `{doc_id, text, meta}`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from rankvideo import formats, logs
from rankvideo.captioner import DEFAULT_PROMPT, Captioner
from rankvideo.elsewhere import in_engine_environment, is_vllm
from rankvideo.extract import scan_videos
from rankvideo.fingerprint import file_stat
from rankvideo.options import positive_int
from rankvideo.pairs import check_shard, shard_of
from rankvideo.resumable import ResumableOutput
from rankvideo.video import (
    VideoDecodeError,
    VideoSettings,
    add_arguments,
    decode_summary,
    from_arguments,
    load_video,
)

log = logging.getLogger(__name__)


def caption_videos(
    captioner: Captioner, doc_ids: Sequence[str], manifest: dict, output
) -> list[dict]:
    """Caption `doc_ids` into `output`; resumes from an interrupted run."""
    missing = [d for d in doc_ids if d not in manifest]
    if missing:
        raise ValueError(f"{len(missing)} videos to caption have no file, e.g. {missing[:5]}")
    # each video is stamped on its own: a fixed or rebuilt video drops only its own caption
    videos = {d: file_stat(manifest[d]) for d in doc_ids}
    store = ResumableOutput(
        output, ("doc_id",), ("text",), fingerprint={"captioner": captioner.identity()},
        part="doc_id", parts=videos,
    )  # fmt: skip
    todo = [d for (d,) in store.pending([(d,) for d in doc_ids])]
    failed = {}
    meta = {
        "model": captioner.model_path,
        "fps": captioner.video.fps,
        "max_frames": captioner.video.max_frames,
    }
    with store, tqdm(total=len(todo), unit="video", desc="captioning", mininterval=5) as progress:
        for start in range(0, len(todo), captioner.batch_size):
            batch, decoded = [], []
            for doc_id in todo[start : start + captioner.batch_size]:
                try:
                    decoded.append(load_video(manifest[doc_id], captioner.video))
                    batch.append(doc_id)
                except VideoDecodeError as e:
                    failed[doc_id] = str(e)
                    log.error("%s (no caption)", e)
            if batch:
                results = captioner.caption_decoded(decoded)
                store.add(
                    [
                        {
                            "doc_id": d,
                            "text": r["text"],
                            "meta": {**meta, "frames": v[0].shape[0], "tokens": r["tokens"]},
                        }
                        for d, r, v in zip(batch, results, decoded, strict=True)
                    ]
                )
            progress.update(min(captioner.batch_size, len(todo) - start))
    if failed:
        raise RuntimeError(
            f"{len(failed)} videos could not be decoded (the {len(store.done)} captions made are "
            f"kept in {store.partial}): " + "; ".join(list(failed.values())[:10])
        )
    log.info(
        "captioned %d videos (%d resumed); %s",
        len(todo),
        len(doc_ids) - len(todo),
        decode_summary(),
    )
    return store.finish([(d,) for d in doc_ids])


def videos_needed(candidate_maps: Sequence, qrels=None, train_ids=None) -> list[str]:
    """Videos of the candidate maps, plus the judged-relevant videos of training queries."""
    needed = {v for path in candidate_maps for v in formats.read_candidates(path)}
    if qrels and train_ids:
        train = set(formats.read_ids(train_ids))
        judged = formats.read_qrels(qrels)
        needed |= {d for q in train & judged.keys() for d, rel in judged[q].items() if rel > 0}
    return sorted(needed)


def make_captioner(model: str, video: dict, settings: dict, engine: dict | None = None):
    """The captioner on its engine: transformers (the default) or vllm."""
    if is_vllm(engine):
        from rankvideo.vllm_engine import VLLMCaptioner

        return VLLMCaptioner(model, VideoSettings(**video), engine=engine, **settings)
    return Captioner(model, VideoSettings(**video), **settings)


@in_engine_environment
def caption_shard(
    candidates: Sequence, qrels, train_ids, manifest, model: str, output, shard: int, shards: int,
    video: dict, settings: dict, engine: dict | None = None,
) -> list[dict]:  # fmt: skip
    """Caption this shard's share of the videos that training and evaluation need; with
    `engine` vllm in another environment, the captioning runs there (rankvideo.elsewhere)."""
    check_shard(shard, shards)
    needed = videos_needed(candidates, qrels, train_ids)
    mine = [v for v in needed if shard_of(v, shards) == shard]
    log.info("shard %d/%d: %d of %d videos", shard, shards, len(mine), len(needed))
    captioner = make_captioner(model, video, settings, engine)
    return caption_videos(captioner, mine, formats.read_manifest(manifest), output)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Caption videos with a vision-language model.")
    parser.add_argument("--video-root", required=True, help="folder of videos named <doc_id>.<ext>")
    parser.add_argument("--output", required=True, help="captions JSON lines")
    parser.add_argument("--model-name", required=True, help="hub id or folder")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--max-new-tokens", type=positive_int, default=256)
    parser.add_argument("--batch-size", type=positive_int, default=4)
    add_arguments(parser)
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
    manifest = scan_videos(args.video_root)
    settings = dict(
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
    )
    engine = {"name": args.engine}
    captioner = make_captioner(args.model_name, from_arguments(args), settings, engine)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    caption_videos(captioner, sorted(manifest), manifest, args.output)


if __name__ == "__main__":
    main()
