"""The provenance of a run: resolved config, commit, packages, model and data digests."""

import csv
import hashlib
import sys
from importlib import metadata
from pathlib import Path

import yaml

from rankvideo.provenance import write_provenance

ROOT = Path(__file__).resolve().parents[1]


def rows_of(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_provenance_names_every_model_and_data_file(tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "qwen3_vl"}')
    (model / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    data = tmp_path / "queries.tsv"
    data.write_text("q1\ta red circle\n")
    config = {"seed": 3, "models": {"vlm": str(model)}, "rerank": {"depth": 20}}
    write_provenance(
        config,
        {"models.vlm": str(model), "system release": "hltcoe/RankVideo"},
        {"queries": str(data)},
        ROOT,
        tmp_path / "out",
    )
    assert yaml.safe_load((tmp_path / "out/config.yaml").read_text()) == config
    rows = {(r["kind"], r["name"]): r["value"] for r in rows_of(tmp_path / "out/provenance.tsv")}
    assert len(rows[("repository", "commit")]) >= 40  # a commit hash (or the repository's note)
    assert rows[("package", "snakemake")] == metadata.version("snakemake")
    assert rows[("package", "pytrec-eval-terrier")] == metadata.version("pytrec-eval-terrier")
    # the folder digest, recomputed here: relative path and content of every file
    digest = hashlib.sha256()
    for name in ("config.json", "sub/weights.bin"):
        content = hashlib.sha256((model / name).read_bytes()).hexdigest()
        digest.update(f"{name}\0{content}\n".encode())
    assert rows[("model", f"models.vlm: {model}")] == f"sha256:{digest.hexdigest()}"
    assert rows[("model", "system release: hltcoe/RankVideo")] == (
        "not in the local Hugging Face cache"
    )
    assert rows[("data", f"queries: {data}")] == hashlib.sha256(data.read_bytes()).hexdigest()


def test_provenance_is_light():
    import subprocess

    code = "import sys, rankvideo.provenance; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
