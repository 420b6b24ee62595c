"""Write docs/configuration.md from schemas/config.schema.yaml: one table per section.

    python devtools/config_docs.py            # rewrite docs/configuration.md
    python devtools/config_docs.py --check    # exit 1 when docs/configuration.md is stale

Each row is a key (nested keys dotted; `<name>` stands for a key you choose), its
default and its description, all read from the schema. tests/test_docs.py renders the
schema again and compares it with the committed file, so the page cannot drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
OUTPUT = ROOT / "docs" / "configuration.md"

# the word that stands for a key you choose, by the dotted key of the map
PLACEHOLDERS = {
    "demo.retrievers": "<retriever>",
    "teacher.instructions": "<dataset>",
    "tiny_models": "<name>",
    "rerank.models": "<system>",
}

HEADER = """\
# Configuration

Every key of the workflow's configuration, its default and what it does. This page is
generated from `schemas/config.schema.yaml` by `python devtools/config_docs.py`; edit
the schema, not this page (`tests/test_docs.py` fails when the two differ).

- `config.yaml` holds the science and is the demo: it overrides the schema's defaults
  for 64 x 64 clips, tiny models and 2 CPU cores. The defaults of `video.*` are the
  paper-scale settings; those of `stage1.*` and `stage2.*` (LoRA, learning rate 1e-5,
  the paper's loss constants) are starting points at cluster scale, not tuned here.
- `configs/released.yaml` and `configs/multivent.yaml` are complete MultiVENT 2.0
  settings ([data.md](data.md#multivent-20)).
- Override on the command line with `--configfile my.yaml` (merged over `config.yaml`)
  or `--config key=value`.
- The workflow validates the configuration against the schema when it starts: an
  unknown key or a value of the wrong type is an error before any job runs.
- Cluster settings (partition, account, GPUs) are not configuration: they live in the
  SLURM profile ([slurm.md](slurm.md)).
"""


def fmt(value) -> str:
    """A default as YAML flow text: null, true, 0.05, [strong, weak], {r: 16}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        plain = value and yaml.safe_load(value) == value and not any(c in value for c in ",:{}[]#")
        return value if plain else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot format {value!r}")


def cell(text: str) -> str:
    """Markdown table cell text: pipes and characters that markdown would eat escaped."""
    text = " ".join(text.split())
    for char in "\\|<*":
        text = text.replace(char, "\\" + char)
    return text


def code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def describe(spec: dict) -> str:
    description = spec.get("description", "").strip()
    choices = spec.get("enum") or spec.get("items", {}).get("enum")
    if choices:
        listed = ", ".join(fmt(c) for c in choices)
        description = f"{description} One of: {listed}." if description else f"One of: {listed}."
    return cell(description)


def rows(key: str, spec: dict, required: bool = False):
    """(key, default, description) of `key` and of every key below it."""
    if "default" in spec:
        default = code(fmt(spec["default"]))
    else:
        default = "required" if required else ""
    yield code(key), default, describe(spec)
    yield from children(key, spec)


def children(key: str, spec: dict):
    needed = set(spec.get("required", []))
    # keys that apply only to an object (`if: {type: object}`) are documented as keys
    properties = spec.get("properties") or spec.get("then", {}).get("properties", {})
    for name, child in properties.items():
        yield from rows(f"{key}.{name}" if key else name, child, name in needed)
    extra = spec.get("additionalProperties")
    if isinstance(extra, dict):
        placeholder = PLACEHOLDERS.get(key, "<name>")
        yield from rows(f"{key}.{placeholder}", extra)


def is_section(spec: dict) -> bool:
    return spec.get("type") == "object"


def render(schema: dict) -> str:
    parts = [HEADER]
    top = {k: v for k, v in schema["properties"].items() if not is_section(v)}
    sections = {k: v for k, v in schema["properties"].items() if is_section(v)}
    if top:
        parts.append("\n## Top level\n\n" + table(rows(k, v) for k, v in top.items()))
    for name, spec in sections.items():
        text = cell(spec.get("description", "").strip())
        parts.append(f"\n## {name}\n\n{text}\n\n" + table([children(name, spec)]))
    return "".join(parts)


def table(groups) -> str:
    lines = ["| key | default | description |", "|---|---|---|"]
    for group in groups:
        lines += [f"| {k} | {d} | {t} |" for k, d, t in group]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args(argv)
    text = render(yaml.safe_load(SCHEMA.read_text()))
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python devtools/config_docs.py")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
