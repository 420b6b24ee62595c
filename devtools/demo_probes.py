"""Probes of the demo's reranker (docs/demo.md): what it uses, and what it can see.

    python devtools/demo_probes.py effects results/rerank/strong/rankvideo.jsonl
    python devtools/demo_probes.py perception resources/models/tiny-qwen3-vl

`effects`: per attribute (colour, shape, motion), the score change when a candidate
matches the query's value, within queries (each query's mean score removed; least
squares over the scored pairs), and the residual spread. `perception`: how well a
ridge probe reads each attribute from the visual tokens the language model receives
(mean- and max-pooled; 150 clips to fit, the rest to test). Both read the demo's
files under results/ (the reference captions name each clip's attributes).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from rankvideo import formats

ATTRIBUTES = ("colour", "shape", "motion")


def attributes(text: str) -> tuple[str, str, str]:
    """(colour, shape, motion) of 'a red circle moving left' (any case, final stop)."""
    words = text.rstrip(".").lower().split()
    return words[1], words[2], words[4]


def clip_attributes(captions="results/data/reference_captions.jsonl") -> dict:
    return {r["doc_id"]: attributes(r["text"]) for _, r in formats.read_jsonl(captions)}


def within_query_effects(scored, queries, clips) -> dict:
    by_query = defaultdict(list)
    for _, r in formats.read_jsonl(scored):
        by_query[r["query_id"]].append(r)
    rows, target = [], []
    for qid, records in by_query.items():
        wanted = attributes(queries[qid])
        scores = np.array([r["logit_delta"] for r in records])
        target += list(scores - scores.mean())
        rows += [[float(a == b) for a, b in zip(wanted, clips[r["doc_id"]], strict=True)] + [1.0]
                 for r in records]  # fmt: skip
    x, y = np.array(rows), np.array(target)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return {
        **{a: round(float(c), 2) for a, c in zip(ATTRIBUTES, coef, strict=False)},
        "residual_sd": round(float((y - x @ coef).std()), 2),
        "pairs": len(y),
    }


def perception(model_path: str, clips: dict, manifest: dict, fit: int = 150) -> dict:
    import torch

    from rankvideo.models import load_vlm, video_inputs
    from rankvideo.prompt import VIDEO
    from rankvideo.video import VideoSettings, for_processor, load_video

    model, processor, _ = load_vlm(model_path, "cpu")
    settings = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=4096)
    settings = for_processor(settings, processor)
    features = []
    for doc in sorted(clips):
        inputs = video_inputs(processor, [VIDEO], [load_video(manifest[doc], settings)], "cpu")
        with torch.no_grad():
            out = model.model.get_video_features(
                inputs["pixel_values_videos"], inputs["video_grid_thw"]
            )
        tokens = torch.cat(list(out.pooler_output)).reshape(
            -1, model.config.text_config.hidden_size
        )
        features.append(torch.cat([tokens.mean(0), tokens.max(0).values]).numpy())
    x = np.array(features)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:fit], order[fit:]
    result = {}
    for i, name in enumerate(ATTRIBUTES):
        labels = [clips[d][i] for d in sorted(clips)]
        classes = sorted(set(labels))
        onehot = np.array([[c == v for c in classes] for v in labels], float)
        a = x[train]
        w = np.linalg.solve(a.T @ a + 10 * np.eye(a.shape[1]), a.T @ onehot[train])
        accuracy = (np.argmax(x[test] @ w, 1) == np.argmax(onehot[test], 1)).mean()
        result[name] = {"accuracy": round(float(accuracy), 2), "chance": round(1 / len(classes), 2)}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe", choices=["effects", "perception"])
    parser.add_argument("path", help="scored pairs (effects) or a model folder (perception)")
    parser.add_argument("--queries", default="results/data/queries.tsv")
    parser.add_argument("--videos", default="results/data/videos.tsv")
    args = parser.parse_args(argv)
    clips = clip_attributes()
    if args.probe == "effects":
        result = within_query_effects(args.path, formats.read_queries(args.queries), clips)
    else:
        result = perception(args.path, clips, formats.read_manifest(args.videos))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
