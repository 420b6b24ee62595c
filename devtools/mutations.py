"""Break one link of the demo at a time and show that the number that must move, moves.

    python devtools/mutations.py [--cores 2] [--output mutations.tsv] [--keep DIR]

Runs the demo (seed 0 unless `--config seed=N`) in a fresh copy of the workflow, whose
`resources/` is this checkout's (the pretrained tiny models are built once; with
`--config` the copy builds its own, as they depend on the settings), then once
per mutation: a copy of the intact run with one file corrupted, and Snakemake reruns
everything downstream of it (the corrupted file is newer than their outputs).

- `shuffled_captions`: the captions moved to other videos
  (`results/captions/captions.jsonl`). The bug it catches: captions joined to the
  wrong videos (an off-by-one or reordered doc_id join). Must fall: the caption audit
  and the teacher's AUC to chance, and `caption_reasoner`.
- `inverted_teacher`: the teacher's p_yes turned into 1 - p_yes
  (`results/teacher/labels.jsonl`). The bug: a sign error in the teacher's score or a
  swapped answer word. Must fall: the teacher's AUC, and `rankvideo` below
  `rankvideo_no_distill` (the same training without the teacher's term, which the
  mutation does not touch) on each retriever and on their mean.
- `shuffled_training_videos`: each training record given another record's video
  (`results/train/ranking.jsonl`). The bug: records joined to the wrong videos.
  Must fall: `rankvideo` and `rankvideo_no_distill`, both trained on the records.

Prints one row per number: the mutation, the number, intact and mutated values, and
whether it moved as stated (`moved`). Exit status 1 when a number did not move.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from workflow_copy import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
# the demo's systems, the ablation that the inverted teacher is measured against among them
SYSTEMS = ["base", "caption_reasoner", "rankvideo", "rankvideo_no_distill"]
SYSTEMS_FILE = "mutations.yaml"
TARGETS = ["results/eval/ndcg.tsv", "results/captions/audit.tsv", "results/teacher/audit.tsv"]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _moved(values: list, seed: int = 0) -> list:
    """The values in another order, none where it was (when the values allow it)."""
    order = list(range(len(values)))
    rng = random.Random(seed)
    while True:
        rng.shuffle(order)
        if all(i != j for i, j in enumerate(order)) or len(order) < 2:
            return [values[j] for j in order]


def shuffled_captions(run: Path) -> None:
    path = run / "results/captions/captions.jsonl"
    records = _records(path)
    texts = _moved([r["text"] for r in records])
    _write(path, [r | {"text": t} for r, t in zip(records, texts, strict=True)])


def inverted_teacher(run: Path) -> None:
    path = run / "results/teacher/labels.jsonl"
    inverted = []
    for r in _records(path):
        inverted.append(
            r
            | {
                "teacher_p_yes": 1.0 - r["teacher_p_yes"],
                "teacher_logit_delta": -r["teacher_logit_delta"],
                "logprob_yes": r["logprob_no"],
                "logprob_no": r["logprob_yes"],
                "teacher_label": 1 - r["teacher_label"],
            }
        )
    _write(path, inverted)


def shuffled_training_videos(run: Path) -> None:
    path = run / "results/train/ranking.jsonl"
    records = _records(path)
    videos = _moved([r["videos"] for r in records])
    _write(path, [r | {"videos": v} for r, v in zip(records, videos, strict=True)])


MUTATIONS = {
    "shuffled_captions": shuffled_captions,
    "inverted_teacher": inverted_teacher,
    "shuffled_training_videos": shuffled_training_videos,
}


def numbers(run: Path) -> dict[str, float]:
    """The numbers a mutation may move: audits and nDCG@10 of every system."""
    table = pd.read_csv(run / "results/eval/ndcg.tsv", sep="\t")
    found = {
        f"ndcg@10 {row.system} ({row.retriever})": row["ndcg@10"] for _, row in table.iterrows()
    }
    captions = pd.read_csv(run / "results/captions/audit.tsv", sep="\t")
    found |= {f"caption audit {r.attribute}": r.accuracy for r in captions.itertuples()}
    teacher = pd.read_csv(run / "results/teacher/audit.tsv", sep="\t").set_index("measure")
    found["teacher roc_auc"] = float(teacher.value["roc_auc"])
    return found


def expectations(intact: dict, mutated: dict) -> dict[str, list]:
    """Per mutation: (number, test of the mutated value, what the test says)."""
    retrievers = ("strong", "weak", "mean")
    return {
        "shuffled_captions": [
            *[(f"caption audit {a}", lambda v: v < 0.5, "< 0.5") for a in ("colour", "motion")],
            ("teacher roc_auc", lambda v: v < 0.7, "< 0.7"),
            *[
                (
                    f"ndcg@10 caption_reasoner ({r})",
                    lambda v, r=r: v < intact[f"ndcg@10 caption_reasoner ({r})"] - 0.05,
                    "falls by > 0.05",
                )
                for r in retrievers
            ],
        ],
        "inverted_teacher": [
            ("teacher roc_auc", lambda v: v < 0.2, "< 0.2"),
            *[
                (
                    f"ndcg@10 rankvideo ({r})",
                    lambda v, r=r: v < mutated[f"ndcg@10 rankvideo_no_distill ({r})"],
                    "< rankvideo_no_distill, mutated: "
                    f"{mutated[f'ndcg@10 rankvideo_no_distill ({r})']:.3f}",
                )
                for r in retrievers
            ],
        ],
        "shuffled_training_videos": [
            (
                f"ndcg@10 {s} (mean)",
                lambda v, s=s: v < intact[f"ndcg@10 {s} (mean)"] - 0.05,
                "falls by > 0.05",
            )
            for s in ("rankvideo", "rankvideo_no_distill")
        ],
    }


def snakemake(run: Path, cores: int, config: list[str]) -> None:
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *TARGETS]
    command += ["--configfile", "config.yaml", SYSTEMS_FILE]
    if config:
        command += ["--config", *config]
    result = subprocess.run(command, cwd=run, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"snakemake failed in {run}:\n{result.stderr[-3000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--config", nargs="*", default=[], help="key=value, as snakemake's")
    parser.add_argument("--output", help="also write the table here (TSV)")
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--only", nargs="*", choices=list(MUTATIONS), default=list(MUTATIONS))
    args = parser.parse_args(argv)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="rankvideo-mutations-"))
    intact = folder / "intact"
    intact.mkdir(parents=True, exist_ok=True)
    copy_workflow(intact)
    systems = {"rerank": {"systems": SYSTEMS}}
    (intact / SYSTEMS_FILE).write_text(json.dumps(systems) + "\n")
    # the checkout's models are built from its config: share them only for that config
    # (Snakemake does not rebuild them when a shared copy's params differ)
    if not args.config and not (intact / "resources").exists():
        (ROOT / "resources").mkdir(exist_ok=True)
        (intact / "resources").symlink_to(ROOT / "resources")
    print(f"intact run in {intact}", file=sys.stderr, flush=True)
    snakemake(intact, args.cores, args.config)
    before = numbers(intact)
    rows, failed = [], 0
    for mutation in args.only:
        run = folder / mutation
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(intact, run, symlinks=True)
        MUTATIONS[mutation](run)
        print(f"{mutation} in {run}", file=sys.stderr, flush=True)
        snakemake(run, args.cores, args.config)
        after = numbers(run)
        for number, test, stated in expectations(before, after)[mutation]:
            moved = bool(test(after[number]))
            failed += moved is False
            rows.append([mutation, number, before[number], after[number], stated, moved])
    table = pd.DataFrame(
        rows, columns=["mutation", "number", "intact", "mutated", "must be", "moved"]
    )
    print(table.to_string(index=False, float_format="%.3f"))
    if args.output:
        table.to_csv(args.output, sep="\t", index=False, float_format="%.4f")
    if not args.keep:
        shutil.rmtree(folder)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
