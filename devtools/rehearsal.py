"""MultiVENT 2.0 at full size on one machine: every job but the model's, run for real.

    python devtools/rehearsal.py [--fraction 1.0] [--dir rehearsal] [--cores 2]
    python devtools/rehearsal.py --growth rehearsal-0.1/jobs.tsv rehearsal/jobs.tsv

Builds MultiVENT 2.0's shapes in `--dir`: about 110k video entries in bucket folders
(`000001/<id>.mp4`, links to four real clips), 2,500 evaluation and 500 training
queries (`queries.csv`, Query_id,query), graded judgements (`judgments.jsonl`), five
first-stage runs of 1,000 candidates per query (`first_stage/ranking_<name>.json`),
the release's archive with training records carrying teacher scores
(`data.tar.gz`: `data/training_data.json`), and score files of three systems at rerank
depth 100 in each format a system file may take (`.jsonl` and TREC per retriever, one
JSON run for all). Then it runs the real workflow in a copy of it there with
`--cores`: extraction, the score files' reading and merge, evaluation, significance,
depth, plots, the teacher audit, provenance and `--report`. Every model step is
replaced by a score file; nothing else is stubbed.

Writes `jobs.tsv` (every job's seconds and peak memory from `benchmarks/`, and the
dry run, the report and the whole run as rows of their own) and prints it. `--growth`
puts two such files side by side with the ratio of each job's time and memory.
`--fraction` scales videos and queries (1,000 candidates and depth 100 stay).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from workflow_copy import ROOT, copy_workflow

FULL = {"videos": 110_000, "eval_queries": 2_500, "train_queries": 500}
RETRIEVERS = {  # name -> share of the relevant videos it retrieves, and its score noise
    "AV_OmniEmbed": (0.8, 0.8),
    "OmniEmbed_text": (0.7, 1.0),
    "MMMORRF": (0.75, 0.9),
    "SigLIP": (0.6, 1.2),
    "CLIP": (0.5, 1.4),
}
SYSTEMS = {  # name -> score file (relative to --dir), and the noise of its scores
    "release": ("scores/release/{retriever}.jsonl", 0.7),
    "published": ("scores/published/{retriever}.trec", 1.0),
    "ours": ("scores/ours.json", 0.5),
}
CANDIDATES, DEPTH, TOPK = 1_000, 100, 20
GRADES = [3, 2, 2, 1, 1, 1]  # the judged relevant videos of a query
JUDGED_NEGATIVES = 9
TARGETS = [
    "results/eval/ndcg.tsv",
    "results/eval/significance.tsv",
    "results/eval/depth.tsv",
    "results/plots/ndcg.png",
    "results/plots/logit_delta_ecdf.png",
    "results/plots/per_query_delta.png",
    "results/teacher/audit.tsv",
    "results/provenance/provenance.tsv",
]
ID_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
WORDS = "protest flood election concert storm parade rescue launch fire match speech".split()
PLACES = ["Santiago, Chile", "Kyiv", "Lagos", "São Paulo", "Seoul", "Москва", "القاهرة"]


def sizes(fraction: float) -> dict:
    """Counts at `fraction` of full size (at least what the workflow needs to run)."""
    scaled = {k: max(round(v * fraction), 1) for k, v in FULL.items()}
    scaled["videos"] = max(scaled["videos"], 50)
    scaled["eval_queries"] = max(scaled["eval_queries"], 3)
    return scaled


def video_ids(count: int, rng) -> list[str]:
    """Unique 11-character ids of YouTube's alphabet, as MultiVENT's files are named."""
    ids: dict[str, None] = {}
    while len(ids) < count:
        draws = rng.integers(0, len(ID_CHARS), size=(count, 11))
        ids.update(dict.fromkeys("".join(row) for row in ID_CHARS[draws]))
    return list(ids)[:count]


def write_videos(folder: Path, ids: list[str], rng) -> None:
    """Bucket folders of 1,000 entries, each a link to one of four real clips."""
    from rankvideo.demo.data import encode_mp4

    clips = folder / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        frames = (rng.random((8, 64, 64, 3)) * 255).astype(np.uint8)
        (clips / f"clip{i}.mp4").write_bytes(encode_mp4(frames, 8))
    for n, vid in enumerate(ids):
        bucket = folder / "videos" / f"{n // 1000 + 1:06d}"
        bucket.mkdir(parents=True, exist_ok=True)
        (bucket / f"{vid}.mp4").symlink_to(Path("../../clips") / f"clip{n % 4}.mp4")


def query_text(n: int, rng) -> str:
    """A query with commas, quotes and non-ASCII places, as MultiVENT's CSV holds."""
    word = WORDS[int(rng.integers(len(WORDS)))]
    place = PLACES[int(rng.integers(len(PLACES)))]
    return f'{word} in {place}, the "{n}" footage'


def build(folder: Path, fraction: float, seed: int = 0) -> dict:
    """Every input file of the rehearsal in `folder`; returns the counts."""
    rng = np.random.default_rng(seed)
    n = sizes(fraction)
    ids = video_ids(n["videos"], rng)
    write_videos(folder, ids, rng)
    queries = [str(100_000 + i) for i in range(n["eval_queries"] + n["train_queries"])]
    train = queries[n["eval_queries"] :]
    with open(folder / "queries.csv", "w", encoding="utf-8") as f:
        f.write("Query_id,query\n")
        for i, qid in enumerate(queries):
            text = query_text(i, rng).replace('"', '""')
            f.write(f'{qid},"{text}"\n')
    judged = {}
    with open(folder / "judgments.jsonl", "w") as f:
        for qid in queries:
            docs = rng.choice(len(ids), size=len(GRADES) + JUDGED_NEGATIVES, replace=False)
            grades = GRADES + [0] * JUDGED_NEGATIVES
            judged[qid] = {ids[d]: g for d, g in zip(docs, grades, strict=True)}
            for doc, grade in judged[qid].items():
                f.write(json.dumps({"query_id": qid, "doc_id": doc, "relevance": grade}) + "\n")
    (folder / "train.txt").write_text("".join(q + "\n" for q in train))
    runs = {r: first_stage(ids, queries, judged, *RETRIEVERS[r], rng) for r in RETRIEVERS}
    (folder / "first_stage").mkdir(exist_ok=True)
    for r, run in runs.items():
        with open(folder / "first_stage" / f"ranking_{r}.json", "w") as f:
            json.dump(run, f)
    write_archive(folder, runs[next(iter(RETRIEVERS))], train, judged, rng)
    write_scores(folder, runs, set(queries) - set(train), judged, rng)
    return n | {"retrievers": len(RETRIEVERS), "candidates": CANDIDATES, "depth": DEPTH}


def first_stage(ids, queries, judged, recall: float, noise: float, rng) -> dict:
    """{qid: {doc: score}}: the judged relevant videos it finds, and random others."""
    run = {}
    size = min(CANDIDATES, len(ids))
    for qid in queries:
        found = {d: g for d, g in judged[qid].items() if g > 0 and rng.random() < recall}
        others = rng.choice(len(ids), size=min(len(ids), size + len(found)), replace=False)
        docs = list(found) + [ids[i] for i in others if ids[i] not in found][: size - len(found)]
        gains = np.array([found.get(d, 0) for d in docs], dtype=float)
        scores = gains + rng.normal(0, noise, size=len(docs))
        run[qid] = {d: round(float(s), 6) for d, s in zip(docs, scores, strict=True)}
    return run


def write_archive(folder: Path, run: dict, train, judged, rng) -> None:
    """The release's archive: training records of the top-k with teacher scores."""
    from rankvideo.formats import ranked

    lines = []
    for qid in train:
        for doc in ranked(run[qid])[:TOPK]:
            grade = judged[qid].get(doc, 0)
            p = float(1 / (1 + np.exp(-(2.0 * (grade > 0) - 1 + rng.normal(0, 1)))))
            record = {
                "query_id": qid,
                "query": f"query {qid}",
                "doc_id": doc,
                "true_label": int(grade > 0),
                "teacher_p_yes": round(p, 4),
                "evidence": {"caption": f"a video {doc}", "asr": ""},
                "teacher_reasoning": "The caption shows the event." if grade else "Unrelated.",
            }
            lines.append(json.dumps(record))
    data = folder / "archive" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "training_data.json").write_text("\n".join(lines) + "\n")
    with tarfile.open(folder / "data.tar.gz", "w:gz") as tar:
        tar.add(data, arcname="data")


def write_scores(folder: Path, runs: dict, eval_ids: set, judged: dict, rng) -> None:
    """The top-`DEPTH` pairs of every evaluation query, scored by each system."""
    from rankvideo.formats import ranked

    pairs = {
        r: [(q, d) for q in sorted(eval_ids) for d in ranked(run[q])[:DEPTH]]
        for r, run in runs.items()
    }
    for system, (pattern, noise) in SYSTEMS.items():
        shared: dict[str, dict[str, float]] = {}
        for r, rpairs in pairs.items():
            gains = np.array([judged[q].get(d, 0) for q, d in rpairs], dtype=float)
            scores = gains + rng.normal(0, noise, size=len(rpairs))
            path = folder / pattern.format(retriever=r)
            path.parent.mkdir(parents=True, exist_ok=True)
            if pattern.endswith(".jsonl"):
                with open(path, "w") as f:
                    for (q, d), s in zip(rpairs, scores, strict=True):
                        f.write(json.dumps({"query_id": q, "doc_id": d, "logit_delta": s}) + "\n")
            elif pattern.endswith(".trec"):
                with open(path, "w") as f:
                    for i, ((q, d), s) in enumerate(zip(rpairs, scores, strict=True)):
                        f.write(f"{q} Q0 {d} {i % DEPTH + 1} {s:.6f} {system}\n")
            else:  # one run for every retriever: a pair keeps the score it got first
                for (q, d), s in zip(rpairs, scores, strict=True):
                    shared.setdefault(q, {}).setdefault(d, round(float(s), 6))
        if shared:
            (folder / pattern).write_text(json.dumps(shared))


def write_config(folder: Path) -> Path:
    config = {
        "training_data": "archive",
        "data": {
            "archive": "data.tar.gz",
            "retrievers": list(RETRIEVERS),
            "videos": "videos",
            "queries": "queries.csv",
            "qrels": "judgments.jsonl",
            "first_stage_dir": "first_stage",
            "train_queries": "train.txt",
            "eval_queries": None,
        },
        "stage1": {"captions": "evidence"},  # the release's records carry the captions
        "rerank": {
            "depth": DEPTH,
            "systems": list(SYSTEMS),
            "models": {name: {"file": pattern} for name, (pattern, _) in SYSTEMS.items()},
        },
    }
    path = folder / "rehearsal.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(folder: Path, *args: str) -> float:
    """Run Snakemake in `folder`; its wall seconds (a failure stops the rehearsal)."""
    command = [str(Path(sys.executable).with_name("snakemake")), *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed in {folder} (exit {done.returncode})")
    return time.perf_counter() - start


def job_table(folder: Path) -> pd.DataFrame:
    """One row per job: its benchmark file (relative to benchmarks/), seconds, peak MB."""
    rows = []
    for path in sorted((folder / "benchmarks").rglob("*.tsv")):
        bench = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "job": str(path.relative_to(folder / "benchmarks").with_suffix("")),
                "seconds": float(bench["s"].iloc[0]),
                "max_rss_mb": float(pd.to_numeric(bench["max_rss"], errors="coerce").iloc[0]),
            }
        )
    return pd.DataFrame(rows, columns=["job", "seconds", "max_rss_mb"])


def rehearse(folder: Path, fraction: float, cores: int) -> pd.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    counts = build(folder, fraction)
    built = time.perf_counter() - start
    print(f"built {counts} in {built:.0f} s", file=sys.stderr, flush=True)
    copy_workflow(folder)
    (folder / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    config = write_config(folder).name
    common = ["--configfile", config]
    dry = snakemake(folder, *TARGETS, "-n", "--quiet", *common)
    run = snakemake(folder, *TARGETS, "--cores", str(cores), *common)
    report = snakemake(folder, *TARGETS, "--report", "report.zip", *common)
    jobs = job_table(folder)
    extra = [
        {"job": "(snakemake -n)", "seconds": dry, "max_rss_mb": float("nan")},
        {"job": f"(the run: every job, --cores {cores})", "seconds": run,
         "max_rss_mb": jobs["max_rss_mb"].max()},
        {"job": "(--report)", "seconds": report, "max_rss_mb": float("nan")},
    ]  # fmt: skip
    table = pd.concat([jobs, pd.DataFrame(extra)], ignore_index=True)
    table.to_csv(folder / "jobs.tsv", sep="\t", index=False, float_format="%.2f")
    (folder / "counts.json").write_text(json.dumps(counts, indent=1))
    return table


def growth(small: Path, full: Path) -> pd.DataFrame:
    """Two job tables side by side, with the ratio of each job's time and memory."""
    a = pd.read_csv(small, sep="\t").set_index("job")
    b = pd.read_csv(full, sep="\t").set_index("job")
    table = a.merge(b, left_index=True, right_index=True, how="outer", suffixes=("_small", "_full"))
    table["time_ratio"] = table["seconds_full"] / table["seconds_small"]
    table["memory_ratio"] = table["max_rss_mb_full"] / table["max_rss_mb_small"]
    return table.reset_index()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="of MultiVENT's size")
    parser.add_argument("--dir", default="rehearsal", help="folder to build and run in")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--growth", nargs=2, metavar=("SMALL", "FULL"), help="two jobs.tsv")
    args = parser.parse_args(argv)
    if args.growth:
        table = growth(*map(Path, args.growth))
    else:
        if not 0 < args.fraction <= 1:
            parser.error(f"--fraction {args.fraction} is not in (0, 1]")
        table = rehearse(Path(args.dir), args.fraction, args.cores)
    print(table.to_string(index=False, float_format="%.2f"))


if __name__ == "__main__":
    main()
