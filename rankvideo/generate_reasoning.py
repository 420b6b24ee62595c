"""`python -m rankvideo.generate_reasoning`: teacher labels with the original release's arguments.

Judges the top-k candidates of every query in a first-stage run (TREC run file
or JSON) from the videos' captions, with a rank1-style reasoning model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rankvideo import formats, logs
from rankvideo.options import positive_int
from rankvideo.teacher import judge_pairs, make_teacher


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", required=True, help="queries TSV: query_id<TAB>text")
    parser.add_argument("--candidates", required=True, help="first-stage run: TREC run or JSON")
    parser.add_argument("--captions-jsonl", required=True, help="captions {doc_id, text}")
    parser.add_argument("--asr-jsonl", help="speech transcripts {doc_id, text}")
    parser.add_argument("--output", required=True, help="labels JSON lines")
    parser.add_argument("--model-path", required=True, help="hub id or folder of a causal LM")
    parser.add_argument("--topk", type=positive_int, default=20)
    parser.add_argument("--instruction", help="relevance instruction (default: generic)")
    parser.add_argument("--answer-words", nargs=2, default=["true", "false"])
    parser.add_argument("--max-reasoning-tokens", type=positive_int, default=512)
    parser.add_argument("--batch-size", type=positive_int, default=8)
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

    run = formats.read_run(args.candidates)
    pairs = sorted(
        (doc, qid) for qid, docs in run.items() for doc in formats.ranked(docs)[: args.topk]
    )
    settings = dict(
        **({"instruction": args.instruction} if args.instruction else {}),
        answer_words=tuple(args.answer_words),
        max_reasoning_tokens=args.max_reasoning_tokens,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
    )
    teacher = make_teacher(args.model_path, settings, {"name": args.engine})
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    judge_pairs(
        teacher,
        pairs,
        formats.read_queries(args.queries),
        formats.read_captions(args.captions_jsonl),
        formats.read_asr(args.asr_jsonl),
        args.output,
    )


if __name__ == "__main__":
    main()
