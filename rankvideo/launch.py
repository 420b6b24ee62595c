"""Starting a training stage: its settings written next to its checkpoints, the
checkpoints of other settings or inputs dropped, and `python -m rankvideo.<stage>` run
(under `accelerate launch` for several processes).

Torch-free, so the workflow job that starts a stage does not load torch and
transformers only to wait for the stage's own process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rankvideo import formats
from rankvideo.fingerprint import Stamp, file_stats, model_files

log = logging.getLogger(__name__)


def input_fingerprint(settings: dict) -> dict:
    """What the run reads besides its settings: the training data's bytes, and the size
    and modification time of every file of the starting model and of every video the
    data names (a rebuilt input gets a new time, so its old checkpoints are not reused)."""
    data = Path(settings["train_data"])
    videos = {v for _, r in formats.read_jsonl(data) for v in r.get("videos") or []}
    return {
        "train_data": hashlib.sha256(data.read_bytes()).hexdigest(),
        "model": model_files(settings["model"]),
        "videos": file_stats(sorted(videos)),
    }


def claim_checkpoints(settings: dict) -> None:
    """Checkpoints belong to one set of settings and inputs: drop those of others.

    Without this, a rerun after a config change (seed, steps, learning rate) or after
    its inputs were rebuilt (new training data or starting model at the same path)
    would silently continue the old run from its last checkpoint.
    """
    checkpoints = Path(settings["work_dir"]) / "checkpoints"
    stamp = Stamp(checkpoints / "settings.json")
    current = {**settings, "inputs": input_fingerprint(settings)}
    if checkpoints.is_dir():
        if stamp.matches(current, checkpoints):
            return
        shutil.rmtree(checkpoints)
    checkpoints.mkdir(parents=True)
    stamp.write(current)


def run_stage(module: str, settings: dict, processes: int, cores: int | None = None) -> None:
    """Write the settings next to the checkpoints and run the stage's entry point.

    `cores` (the job's, e.g. Snakemake's `threads`, which it lowers to what the machine
    has) are shared out among the processes as their torch threads.
    """
    if cores:
        settings = {**settings, "threads": max(1, cores // processes)}
    work = Path(settings["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    if processes > 1:  # the launched processes would race; a single one claims in stage_main
        claim_checkpoints(settings)
    path = work / "settings.json"
    path.write_text(json.dumps(settings, indent=2))
    launch(module, path, processes, settings.get("threads", 1))


def launch(module: str, settings_path, processes: int, threads: int = 1) -> None:
    """Run `python -m <module> --settings <json>`; under `accelerate launch` when processes > 1."""
    if processes <= 1:
        command = [sys.executable, "-m", module, "--settings", str(settings_path)]
    else:
        command = [
            sys.executable, "-m", "accelerate.commands.launch",
            "--num_processes", str(processes), "--num_machines", "1",
            *(["--multi_gpu"] if _cuda() else ["--cpu"]),
            "-m", module, "--settings", str(settings_path),
        ]  # fmt: skip
    log.info("running %s", " ".join(command))
    # each process runs `threads` CPU threads (the rule holds processes x threads cores)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    # the child writes where this process logs (the job log under Snakemake)
    subprocess.run(command, check=True, env=env, stdout=sys.stderr, stderr=sys.stderr)


def _cuda() -> bool:
    import torch  # only for several processes: accelerate needs to be told cpu or GPUs

    return torch.cuda.is_available()
