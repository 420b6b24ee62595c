"""Captions of videos by a vision-language model (the perception data of stage 1).

The captioner is any model that `AutoModelForImageTextToText` loads (Qwen3-VL,
Qwen2.5-VL) or, for a Qwen3-Omni checkpoint, its thinker. Generation is greedy,
batched with left padding; each video is decoded once. Output: JSON lines
`{doc_id, text, meta}`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from rankvideo import formats
from rankvideo.extract import scan_videos
from rankvideo.fingerprint import file_stats
from rankvideo.models import load_vlm, model_identity, video_inputs
from rankvideo.pairs import check_shard, shard_of
from rankvideo.resumable import ResumableOutput
from rankvideo.video import (
    VideoDecodeError,
    VideoSettings,
    add_arguments,
    decode_summary,
    for_processor,
    from_arguments,
    load_video,
)

log = logging.getLogger(__name__)

DEFAULT_PROMPT = (
    "Describe this video in 3 to 6 concise, factual sentences: the events, people, "
    "actions, objects, places and any readable text. Do not speculate."
)


class Captioner:
    def __init__(
        self,
        model_path: str,
        video: VideoSettings | None = None,
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = 256,
        batch_size: int = 4,
        device: str = "auto",
        dtype: str = "auto",
    ):
        self.model_path = model_path
        self.model, self.processor, self.device = load_vlm(model_path, device, dtype)
        self.video = for_processor(video, self.processor)
        messages = [
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}
        ]
        self.prompt = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def identity(self) -> dict:
        """Everything that decides the captions (what a resumed output must share)."""
        return {
            **model_identity(self.model_path, self.model, self.device),
            "prompt": self.prompt,
            "max_new_tokens": self.max_new_tokens,
            "batch_size": self.batch_size,
            "video": self.video.sampling(),
        }

    @torch.inference_mode()
    def caption_decoded(self, videos: Sequence[tuple]) -> list[dict]:
        """Caption text and generated-token count per decoded video."""
        inputs = video_inputs(self.processor, [self.prompt] * len(videos), videos, self.device)
        tokenizer = self.processor.tokenizer
        out = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        new = out[:, inputs["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        stops = {tokenizer.pad_token_id, tokenizer.eos_token_id}
        lengths = [sum(int(t) not in stops for t in row) for row in new]
        return [
            {"text": " ".join(t.split()), "tokens": n} for t, n in zip(texts, lengths, strict=True)
        ]


def caption_videos(
    captioner: Captioner, doc_ids: Sequence[str], manifest: dict, output
) -> list[dict]:
    """Caption `doc_ids` into `output`; resumes from an interrupted run."""
    missing = [d for d in doc_ids if d not in manifest]
    if missing:
        raise ValueError(f"{len(missing)} videos to caption have no file, e.g. {missing[:5]}")
    fingerprint = {
        "captioner": captioner.identity(),
        "videos": file_stats(manifest[d] for d in doc_ids),
    }
    store = ResumableOutput(output, ("doc_id",), ("text",), fingerprint=fingerprint)
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


def caption_shard(
    candidates: Sequence, qrels, train_ids, manifest, model: str, output, shard: int, shards: int,
    video: dict, settings: dict,
) -> list[dict]:  # fmt: skip
    """Caption this shard's share of the videos that training and evaluation need."""
    check_shard(shard, shards)
    needed = videos_needed(candidates, qrels, train_ids)
    mine = [v for v in needed if shard_of(v, shards) == shard]
    log.info("shard %d/%d: %d of %d videos", shard, shards, len(mine), len(needed))
    captioner = Captioner(model, VideoSettings(**video), **settings)
    return caption_videos(captioner, mine, formats.read_manifest(manifest), output)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Caption videos with a vision-language model.")
    parser.add_argument("--video-root", required=True, help="folder of videos named <doc_id>.<ext>")
    parser.add_argument("--output", required=True, help="captions JSON lines")
    parser.add_argument("--model-name", required=True, help="hub id or folder")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    add_arguments(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    manifest = scan_videos(args.video_root)
    video = VideoSettings(**from_arguments(args))
    captioner = Captioner(
        args.model_name,
        video,
        args.prompt,
        args.max_new_tokens,
        args.batch_size,
        args.device,
        args.dtype,
    )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    caption_videos(captioner, sorted(manifest), manifest, args.output)


if __name__ == "__main__":
    main()
