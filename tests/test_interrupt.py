"""Real Snakemake runs killed with SIGKILL resume to the bytes of an uninterrupted run, and
two uninterrupted runs give the same bytes.

The uninterrupted runs are shared by the tests of this module: they start together in the
background (one core each) when the module starts and each test waits for the ones it reads.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CONFIGS = ROOT / "tests/configs"
TARGET = "results/eval/ndcg.tsv"
# the inference DAG (base, caption_reasoner) and the training DAG (rankvideo) of a small demo
INFERENCE = ("small_demo.yaml",)
TRAINING = ("small_demo.yaml", "small_demo_training.yaml")
STAGE2_WORK = "results/stage2/work"  # rules/train_reranker.smk: the trainer's work_dir
STAGE2_LOG = "logs/stage2/train_reranker.log"
POLL_S = 0.2

# Guards against hangs, not speed checks: at least 3x the times measured on a 2-core machine
# (while other test suites ran on it too).
# A whole DAG, from the start: measured 68 s (inference) alone; 180-330 s (inference and
# training) with this module's 4-5 runs at once.
RUN_TIMEOUT_S = 1200
RERUN_TIMEOUT_S = 600  # a rerun after a kill: measured 35-125 s
UNLOCK_TIMEOUT_S = 60  # snakemake --unlock: measured 1-5 s


def config_values(*files: str) -> dict:
    """The workflow's config.yaml with the given files of tests/configs merged over it."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())

    def merge(base, over):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value

    for name in files:
        merge(config, yaml.safe_load((CONFIGS / name).read_text()))
    return config


def outputs(configs: tuple[str, ...]) -> list[str]:
    """The final files compared byte for byte: the tables and every reranked file."""
    config = config_values(*configs)
    files = ["results/eval/ndcg.tsv", "results/eval/per_query.tsv"]
    for retriever in config["data"]["retrievers"]:
        for system in config["rerank"]["systems"]:
            files += [f"results/rerank/{retriever}/{system}.{ext}" for ext in ("jsonl", "run")]
    return files


def add_configs(workdir: Path, configs: tuple[str, ...]) -> Path:
    for name in configs:
        shutil.copy(CONFIGS / name, workdir / name)
    return workdir


def copy_with_configs(folder: Path, configs: tuple[str, ...]) -> Path:
    """A fresh copy of the workflow (as the `workdir` fixture makes one) and the configs."""
    return add_configs(copy_workflow(folder), configs)


class Snakemake:
    """Snakemake in its own process group (killable as a whole), output to a file."""

    def __init__(self, workdir: Path, *args: str, name: str = "snakemake"):
        self.workdir, self.name = workdir, name
        self.output = workdir / f"{name}.out"
        with open(self.output, "w") as out:
            self.process = subprocess.Popen(
                [*SNAKEMAKE, *args],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL every process of the run's group, and wait until none is left."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(POLL_S)
        raise AssertionError(f"processes of group {self.process.pid} outlived SIGKILL")

    def check_time(self, timeout: float) -> None:
        """Kill the run and fail once it has run `timeout` seconds."""
        if time.monotonic() - self.started > timeout:
            self.kill()
            pytest.fail(f"{self.name} in {self.workdir} ran past {timeout} s:\n{self.tail()}")

    def wait(self, timeout: float) -> Path:
        """Wait for a successful end (at most `timeout` s from the start); the workdir."""
        try:
            self.process.wait(timeout=max(timeout - (time.monotonic() - self.started), 0))
        except subprocess.TimeoutExpired:
            self.check_time(timeout)
        assert self.process.returncode == 0, f"{self.name} failed:\n{self.tail()}"
        return self.workdir

    def tail(self, chars: int = 4000) -> str:
        return self.output.read_text(errors="replace")[-chars:]


def snakemake(workdir: Path, *args: str, configs, timeout: float, name: str) -> Snakemake:
    """Run `snakemake --cores 1 ... --configfile <configs>` to a successful end."""
    run = Snakemake(workdir, "--cores", "1", *args, "--configfile", *configs, name=name)
    run.wait(timeout)
    return run


# the reference runs each test reads
REFERENCES = {
    "test_kill_inside_a_rerank_shard_resumes_to_the_same_bytes": ["inference"],
    "test_kill_inside_stage2_training_resumes_to_the_same_bytes": ["training"],
    "test_two_runs_of_the_inference_dag_give_the_same_bytes": ["inference", "inference_again"],
}
REFERENCE_CONFIGS = {"inference": INFERENCE, "inference_again": INFERENCE, "training": TRAINING}


@pytest.fixture(scope="module")
def references(request, tmp_path_factory):
    """Uninterrupted runs of the selected tests, started together: name -> Snakemake."""
    selected = {item.originalname for item in request.session.items}
    names = sorted({name for test, refs in REFERENCES.items() if test in selected for name in refs})
    runs = {}
    for name in names:
        configs = REFERENCE_CONFIGS[name]
        workdir = copy_with_configs(tmp_path_factory.mktemp(name), configs)
        runs[name] = Snakemake(workdir, "--cores", "1", TARGET, "--configfile", *configs, name=name)
    yield runs
    for run in runs.values():
        if run.running():
            run.kill()


def differences(files: list[str], one: Path, other: Path) -> list[str]:
    """The files whose bytes differ, each with its first differing line."""
    found = []
    for name in files:
        a, b = (one / name).read_bytes(), (other / name).read_bytes()
        if a == b:
            continue
        lines_a, lines_b = a.splitlines(), b.splitlines()
        first = next(
            (i for i, (x, y) in enumerate(zip(lines_a, lines_b, strict=False)) if x != y),
            min(len(lines_a), len(lines_b)),
        )
        found.append(
            f"{name}: {len(lines_a)} vs {len(lines_b)} lines; first difference at line "
            f"{first + 1}:\n  {lines_a[first : first + 1]}\n  {lines_b[first : first + 1]}"
        )
    return found


def complete_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def rerun(workdir: Path, configs) -> Snakemake:
    """After a kill: release the killed run's lock, then finish the incomplete jobs."""
    snakemake(workdir, "--unlock", configs=configs, timeout=UNLOCK_TIMEOUT_S, name="unlock")
    return snakemake(
        workdir, TARGET, "--rerun-incomplete", configs=configs, timeout=RERUN_TIMEOUT_S,
        name="rerun",
    )  # fmt: skip


@pytest.mark.workflow
def test_kill_inside_a_rerank_shard_resumes_to_the_same_bytes(workdir, references):
    """SIGKILL of the whole run while a rerank shard has scored some pairs into its
    `.partial` file: the rerun resumes that shard from the scored pairs, and the table
    and every reranked file equal an uninterrupted run's, byte for byte."""
    add_configs(workdir, INFERENCE)
    run = Snakemake(workdir, "--cores", "1", TARGET, "--configfile", *INFERENCE, name="killed")
    partial = None
    while partial is None:
        assert run.running(), f"the run ended before a shard had scored a pair:\n{run.tail()}"
        run.check_time(RUN_TIMEOUT_S)
        scored = sorted(workdir.glob("results/rerank/shards/*/*.jsonl.partial"))
        partial = next((p for p in scored if complete_lines(p) > 0), None)
        if partial is None:
            time.sleep(POLL_S)
    run.kill()
    assert partial.exists(), f"{partial} was finished before the kill"
    done = complete_lines(partial)  # a line cut short by the kill is dropped on resume
    system, shard = partial.parent.name, partial.name.split(".")[0]

    rerun(workdir, INFERENCE)

    log = (workdir / f"logs/rerank/shards/{system}/{shard}.log").read_text()
    assert f"resuming: {done} records already in" in log, log[-3000:]
    reference = references["inference"].wait(RUN_TIMEOUT_S)
    files = outputs(INFERENCE)
    differ = differences(files, reference, workdir)
    assert not differ, "\n".join(differ)


def stage2_progress(workdir: Path, max_steps: int) -> int:
    """The last optimizer step that the trainer's progress bar shows in the job log."""
    try:
        text = (workdir / STAGE2_LOG).read_text(errors="replace")
    except FileNotFoundError:
        return 0
    steps = re.findall(rf"(\d+)/{max_steps} \[", text)
    return int(steps[-1]) if steps else 0


def last_checkpoint(workdir: Path) -> int:
    folder = workdir / STAGE2_WORK / "checkpoints"
    found = [
        int(m.group(1))
        for p in (folder.iterdir() if folder.is_dir() else [])
        if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and p.is_dir()
    ]
    return max(found, default=0)


@pytest.mark.workflow
def test_kill_inside_stage2_training_resumes_to_the_same_bytes(workdir, references):
    """SIGKILL of the whole run while stage 2 trains, after a checkpoint and at least one
    step past it: the rerun resumes from that checkpoint, and the table, the trained
    reranker's reranked files and the stage-2 model equal an uninterrupted run's."""
    add_configs(workdir, TRAINING)
    stage2 = config_values(*TRAINING)["stage2"]
    run = Snakemake(workdir, "--cores", "1", TARGET, "--configfile", *TRAINING, name="killed")
    while True:
        assert run.running(), f"the run ended before a stage-2 checkpoint:\n{run.tail()}"
        run.check_time(RUN_TIMEOUT_S)
        checkpoint, step = last_checkpoint(workdir), stage2_progress(workdir, stage2["max_steps"])
        # past the checkpoint, and (the progress bar may lag a step) not at the next save
        if checkpoint and checkpoint < step <= checkpoint + stage2["save_every"] - 2:
            break
        time.sleep(POLL_S)
    run.kill()
    assert not (workdir / "results/stage2/train_log.tsv").exists(), "training had finished"

    rerun(workdir, TRAINING)

    log = (workdir / STAGE2_LOG).read_text(errors="replace")
    resumed = f"resuming from {STAGE2_WORK}/checkpoints/checkpoint-{checkpoint}"
    assert resumed in log, log[-3000:]
    reference = references["training"].wait(RUN_TIMEOUT_S)
    model = sorted(
        str(p.relative_to(reference)) for p in (reference / "results/stage2/model").iterdir()
    )
    files = [*outputs(TRAINING), *model, "results/stage2/train_log.tsv"]
    differ = differences(files, reference, workdir)
    assert not differ, "\n".join(differ)


@pytest.mark.workflow
def test_two_runs_of_the_inference_dag_give_the_same_bytes(references):
    """Two uninterrupted runs of the inference DAG in two fresh copies give the same
    tables, reranked files and captions, byte for byte."""
    one = references["inference"].wait(RUN_TIMEOUT_S)
    other = references["inference_again"].wait(RUN_TIMEOUT_S)
    files = [*outputs(INFERENCE), "results/captions/captions.jsonl"]
    differ = differences(files, one, other)
    assert not differ, "\n".join(differ)
