"""The library's import structure, read from the source with `ast`.

Every module imports on its own; no module reaches itself through the imports of
others (a circle stays hidden while one side imports inside a function, and breaks
as soon as someone moves that import up); and the steps that run on the submitting
host of a cluster run (the `localrules` of the workflow) never load torch or
transformers.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rankvideo"
HEAVY = ("torch", "transformers")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def imported(path: Path, modules=MODULES) -> set[str]:
    """The library's modules that a file imports, at its top and inside functions."""
    package = module_name(path).rsplit(".", 1)[0] if path.stem != "__init__" else None
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's own package
                anchor = (package or module_name(path)).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from rankvideo import formats` imports the module rankvideo.formats
            found |= {
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            }
    return {name for name in found if name in modules}


GRAPH = {name: imported(path) - {name} for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as its nodes (the first repeated at the end), or None."""
    done: set[str] = set()

    def visit(node, trail):
        if node in trail:
            return [*trail[trail.index(node) :], node]
        if node in done:
            return None
        for successor in sorted(graph.get(node, ())):
            if cycle := visit(successor, [*trail, node]):
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start, []):
            return cycle
    return None


def reachable(starts, graph=GRAPH) -> set[str]:
    seen, todo = set(), list(starts)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph[node]
    return seen


def test_the_graph_sees_imports_inside_functions():
    assert "rankvideo.evaluate" in GRAPH["rankvideo.pairs"]  # inside write_reranked
    assert "rankvideo.scoring" in GRAPH["rankvideo"]  # the package's lazy VLMReranker
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports_alone(module):
    """Each module in a fresh interpreter, so none works only after another was imported."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]


# --- light steps ------------------------------------------------------------------


def local_rules() -> list[str]:
    """The rules that the Snakefile runs on the submitting host (`localrules:`)."""
    text = (ROOT / "Snakefile").read_text()
    match = re.search(r"^localrules:(.*?)(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "the Snakefile has no localrules"
    return re.findall(r"\w+", re.sub(r"#.*", "", match.group(1)))


def rule_blocks() -> dict[str, str]:
    """Each rule's text in rules/*.smk, by rule name."""
    blocks = {}
    for path in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule )", path.read_text(), flags=re.MULTILINE):
            if match := re.match(r"rule (\w+):", block):
                blocks[match.group(1)] = block
    return blocks


def rule_script(block: str) -> Path:
    match = re.search(r'script:\s*"\.\./(scripts/\w+\.py)"', block)
    assert match, f"no script in {block[:40]}"
    return ROOT / match.group(1)


BLOCKED = """
import importlib, importlib.abc, json, sys

class Blocked(importlib.abc.MetaPathFinder):
    tried = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            Blocked.tried.append(name)
            raise ImportError(f"{name} is not available to a light step")
        return None

sys.meta_path.insert(0, Blocked())
failed = {}
for module in MODULES:
    try:
        importlib.import_module(module)
    except ImportError as e:
        failed[module] = str(e)
print(json.dumps({"tried": sorted(set(Blocked.tried)), "failed": failed}))
"""


def import_without_heavy(modules) -> dict:
    """Import the modules where torch and transformers cannot be imported: which of those
    were tried ('tried') and which modules failed to import ('failed')."""
    code = BLOCKED.replace("HEAVY", repr(HEAVY)).replace("MODULES", repr(sorted(modules)))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_the_blocker_sees_a_heavy_import():
    found = import_without_heavy(["rankvideo.formats", "rankvideo.video"])
    assert found["tried"] == ["torch"] and list(found["failed"]) == ["rankvideo.video"]


LOCAL = local_rules()


def test_model_steps_run_on_the_cluster():
    """Rules that ask for GPUs are cluster jobs; the light ones are local and exist."""
    blocks = rule_blocks()
    assert set(LOCAL) <= blocks.keys()
    assert not [rule for rule in LOCAL if "gpu=" in blocks[rule]]


@pytest.mark.parametrize("rule", LOCAL)
def test_light_steps_load_no_torch(rule):
    """The library modules of a local rule's script, and every one they import (inside
    functions too), import without torch and transformers."""
    script = rule_script(rule_blocks()[rule])
    modules = reachable(imported(script))
    assert modules, f"{script.name} uses no library module"
    assert import_without_heavy(modules) == {"tried": [], "failed": {}}


@pytest.mark.parametrize("rule", ["train_perception", "train_reranker"])
def test_training_jobs_start_their_stage_without_torch(rule):
    """The job of a training rule only starts the stage's own process and waits for it:
    its script's modules import without torch and transformers (seconds per stage)."""
    script = rule_script(rule_blocks()[rule])
    assert "rankvideo.launch" in imported(script)
    assert import_without_heavy(imported(script)) == {"tried": [], "failed": {}}
