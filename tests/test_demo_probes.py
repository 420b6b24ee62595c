"""The demo probes recover known within-query effects (docs/demo.md)."""

import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "demo_probes", Path(__file__).parents[1] / "devtools" / "demo_probes.py"
)
demo_probes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_probes)


def test_within_query_effects_ignore_query_offsets(tmp_path):
    """Scores = 2 x motion match + 0.5 x colour match + a per-query offset: the probe
    finds 2 and 0.5 (and no shape effect); an across-query average would not."""
    queries = {"q1": "a red circle moving left", "q2": "a blue square moving up"}
    clips = {
        f"v{i}": (colour, shape, motion)
        for i, (colour, shape, motion) in enumerate(
            (c, s, m) for c in ("red", "blue") for s in ("circle", "square") for m in ("left", "up")
        )
    }
    offsets = {"q1": 5.0, "q2": -3.0}
    with open(tmp_path / "scored.jsonl", "w") as f:
        for qid, text in queries.items():
            wanted = demo_probes.attributes(text)
            for doc, attrs in clips.items():
                score = offsets[qid] + 2.0 * (attrs[2] == wanted[2]) + 0.5 * (attrs[0] == wanted[0])
                f.write(json.dumps({"query_id": qid, "doc_id": doc, "logit_delta": score}) + "\n")
    effects = demo_probes.within_query_effects(tmp_path / "scored.jsonl", queries, clips)
    assert effects["motion"] == pytest.approx(2.0)
    assert effects["colour"] == pytest.approx(0.5)
    assert effects["shape"] == pytest.approx(0.0, abs=1e-9)
    assert effects["residual_sd"] == pytest.approx(0.0, abs=1e-9)
    assert effects["pairs"] == 16


def test_attributes_of_a_caption():
    assert demo_probes.attributes("A Cyan triangle moving down.") == ("cyan", "triangle", "down")
