"""The demo over several seeds: one row of docs/demo.md's seeds table per seed.

    python devtools/seeds.py --seeds 0 1 2 3 4 [--dir seeds] [--side-by-side 2]

Runs the default DAG (`results/eval/ndcg.tsv` and both audits, `--config seed=N`) in a
fresh copy of the workflow per seed, `--side-by-side` seeds at a time on one core each,
then prints per seed: nDCG@10 of the first stage -> caption_reasoner / rankvideo /
rankvideo_no_distill (strong, weak), base, the caption audit, the teacher's ROC AUC and
the within-query effects of rankvideo's scores (devtools/demo_probes.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from demo_probes import clip_attributes, within_query_effects
from workflow_copy import copy_workflow

from rankvideo import formats

TARGETS = ["results/eval/ndcg.tsv", "results/captions/audit.tsv", "results/teacher/audit.tsv"]


def run_seed(folder: Path, seed: int, cores: int) -> Path:
    run = copy_workflow(folder / f"seed-{seed}")
    command = [str(Path(sys.executable).with_name("snakemake")), "--cores", str(cores)]
    command += [*TARGETS, "--config", f"seed={seed}"]
    done = subprocess.run(command, cwd=run, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"seed {seed} failed in {run}:\n{done.stderr[-3000:]}")
    return run


def row(run: Path, seed: int) -> str:
    table = pd.read_csv(run / "results/eval/ndcg.tsv", sep="\t")
    ndcg = table.set_index(["retriever", "system"])["ndcg@10"]

    def cell(r):
        systems = ("caption_reasoner", "rankvideo", "rankvideo_no_distill")
        c, t, n = (ndcg[(r, s)] for s in systems)
        return f"{ndcg[(r, 'first_stage')]:.3f} -> {c:.3f} / **{t:.3f}** / {n:.3f}"

    captions = pd.read_csv(run / "results/captions/audit.tsv", sep="\t").set_index("attribute")
    right = " / ".join(f"{captions.accuracy[a]:.2f}" for a in ("colour", "shape", "motion"))
    audit = pd.read_csv(run / "results/teacher/audit.tsv", sep="\t").set_index("measure")
    clips = clip_attributes(run / "results/data/reference_captions.jsonl")
    queries = formats.read_queries(run / "results/data/queries.tsv")
    effects = within_query_effects(run / "results/rerank/strong/rankvideo.jsonl", queries, clips)
    base = f"{ndcg[('strong', 'base')]:.3f} / {ndcg[('weak', 'base')]:.3f}"
    within = " / ".join(f"{effects[a]:.2f}" for a in ("colour", "shape", "motion"))
    auc = float(audit.value["roc_auc"])
    cells = [str(seed), cell("strong"), cell("weak"), base, right, f"{auc:.3f}", within]
    return "| " + " | ".join(cells) + " |"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--dir", default="seeds", help="one fresh copy per seed in here")
    parser.add_argument("--side-by-side", type=int, default=2, help="seeds run at once")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    with ThreadPoolExecutor(args.side_by_side) as pool:
        runs = list(pool.map(lambda s: run_seed(folder, s, 1), args.seeds))
    for seed, run in zip(args.seeds, runs, strict=True):
        print(row(run, seed))


if __name__ == "__main__":
    main()
