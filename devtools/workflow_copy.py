"""A fresh copy of the workflow as a new clone holds it, for runs in another folder.

The library comes from the installed package; the copy holds what Snakemake reads.
Used by the tests (tests/conftest.py) and by the devtools that run the workflow
elsewhere (mutations.py, rehearsal.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = [
    "Snakefile",
    "config.yaml",
    "configs",
    "environment.yml",
    "report",
    "rules",
    "scripts",
    "schemas",
    "slurm",
]


def copy_workflow(folder: Path) -> Path:
    """Copy the workflow files into `folder` (those already there are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source, target = ROOT / name, folder / name
        if target.exists():
            continue
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    return folder
