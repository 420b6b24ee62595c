#!/usr/bin/env bash
# The reference environment (.venv-ref, requirements-reference.txt) and its fixtures.
#
#   devtools/reference/build.sh [OUT_DIR]     (default: tests/fixtures/reference)
#
# Builds the demo's tiny Qwen3-VL with the workflow's own environment (.venv), then
# runs devtools/reference/fixtures.py in .venv-ref (transformers 4.57.1, qwen-vl-utils
# 0.0.14) on the clips in tests/fixtures/reference/clips. CI writes the fixtures again
# and checks them against the committed ones with devtools/reference/compare.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-tests/fixtures/reference}
if [ ! -x .venv-ref/bin/python ]; then
  python3 -m venv .venv-ref
  .venv-ref/bin/pip install --quiet --no-deps -r requirements-reference.txt
  .venv-ref/bin/pip check
fi
models=$(mktemp -d)
trap 'rm -rf "$models"' EXIT
.venv/bin/python - "$models" <<'PY'
import sys
from pathlib import Path

import yaml

from rankvideo.demo.tiny_models import build

config = yaml.safe_load(Path("config.yaml").read_text())
name = config["models"]["captioner"]  # a tiny Qwen3-VL built from its architecture, unpretrained
build(Path(sys.argv[1]) / "vlm", config["tiny_models"][name], seed=0)
PY
.venv-ref/bin/python devtools/reference/fixtures.py "$models/vlm" tests/fixtures/reference/clips "$out"
