"""Training steps per second with and without keeping freed memory (rankvideo/allocator.py).

    python devtools/bench_training.py results/stage1/work/settings.json --steps 40 --rounds 2

Runs the stage that wrote the settings (a finished demo run has them under
results/stage*/work/) for `--steps` steps in fresh processes, alternating the two
allocator settings, and prints each run's training seconds and the ratio of the means.
The losses of both settings are compared too: they must be the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(settings: dict, keep: bool, folder: Path) -> tuple[float, str]:
    """(training seconds, the per-step log) of one run."""
    stage = "train_reranker" if "num_negatives" in settings else "train_perception"
    run = {
        **settings,
        "output_dir": str(folder / "model"),
        "work_dir": str(folder / "work"),
        "log": str(folder / "log.tsv"),
        "save_every": 10**9,
    }
    path = folder / "settings.json"
    path.write_text(json.dumps(run))
    env = {**os.environ, "RANKVIDEO_KEEP_FREED_MEMORY": "1" if keep else "0"}
    env["OMP_NUM_THREADS"] = str(settings.get("threads", 1))
    done = subprocess.run(
        [sys.executable, "-m", f"rankvideo.{stage}", "--settings", str(path)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = float(done.stderr.split("'train_runtime': '")[1].split("'")[0])
    return seconds, (folder / "log.tsv").read_text()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", help="a stage's work/settings.json")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    settings = {**json.loads(Path(args.settings).read_text()), "max_steps": args.steps}
    times, logs = {True: [], False: []}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for keep in (False, True):
                seconds, logs[keep] = one_run(settings, keep, Path(tmp) / f"{round_}-{keep}")
                times[keep].append(seconds)
                print(f"round {round_}, keep freed memory {keep}: {seconds:.2f} s", flush=True)
    mean = {k: sum(v) / len(v) for k, v in times.items()}
    losses = [[row.split("\t")[1] for row in log.splitlines()[1:]] for log in logs.values()]
    print(f"ratio kept/system: {mean[True] / mean[False]:.2f} ({mean[False] / mean[True]:.2f}x)")
    print("losses identical:", losses[0] == losses[1])


if __name__ == "__main__":
    main()
