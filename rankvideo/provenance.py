"""Provenance of a run: what produced its numbers, written next to them.

`results/provenance/config.yaml` is the resolved configuration (the config file, the
command line's overrides and the schema's defaults); `results/provenance/provenance.tsv`
lists, one per row, the repository's commit, the version of every package the
workflow depends on, every model with the digest of its files (sha256 over the
folder's files, or the hub revision in the local Hugging Face cache) and every data
file with its sha256. The report (`snakemake --report`) shows both.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

PACKAGES = (
    "rankvideo", "snakemake", "snakemake-executor-plugin-slurm", "torch", "torchvision",
    "transformers", "tokenizers", "peft", "accelerate", "qwen-vl-utils", "decord", "av",
    "numpy", "pandas", "scipy", "matplotlib", "pytrec-eval-terrier",
)  # fmt: skip


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_sha256(folder) -> str:
    """One digest of every file's relative path and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def model_digest(model: str) -> str:
    """sha256 of a model folder, or the revision of a hub id in the local cache."""
    if Path(model).is_dir():
        return f"sha256:{folder_sha256(model)}"
    from rankvideo.fingerprint import model_files

    revision = model_files(model)["revision"]
    return f"hub revision {revision}" if revision else "not in the local Hugging Face cache"


def repository_commit(folder) -> str:
    """The commit of the workflow's repository, marked when files differ from it."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30
        )

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return "not a git repository"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def write_provenance(
    config: dict, models: dict[str, str], data: dict[str, str], workflow_dir, out_dir
) -> list[dict]:
    """Write config.yaml and provenance.tsv into `out_dir`; returns the rows.

    `models` maps a role (e.g. `vlm`, `system rankvideo`) to a model name or folder;
    `data` maps a name to a file whose sha256 is recorded.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    rows = [{"kind": "repository", "name": "commit", "value": repository_commit(workflow_dir)}]
    rows += [{"kind": "package", "name": p, "value": package_version(p)} for p in PACKAGES]
    for role, model in models.items():
        rows.append({"kind": "model", "name": f"{role}: {model}", "value": model_digest(model)})
    for name, path in data.items():
        rows.append({"kind": "data", "name": f"{name}: {path}", "value": file_sha256(path)})
    with open(out / "provenance.tsv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["kind", "name", "value"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    log.info("provenance of %d models and %d data files in %s", len(models), len(data), out)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the provenance of a run.")
    parser.add_argument("--config", required=True, help="the resolved configuration (YAML)")
    parser.add_argument("--model", action="append", default=[], help="ROLE=NAME_OR_FOLDER")
    parser.add_argument("--data", action="append", default=[], help="NAME=FILE")
    parser.add_argument("--output-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = yaml.safe_load(Path(args.config).read_text())
    write_provenance(
        config,
        dict(m.split("=", 1) for m in args.model),
        dict(d.split("=", 1) for d in args.data),
        Path.cwd(),
        args.output_dir,
    )


if __name__ == "__main__":
    main()
