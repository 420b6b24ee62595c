"""The scoring benchmark runs end to end on the tiny model and reports what it measured."""

import csv
import json

import pytest

from rankvideo import bench as bench_module
from rankvideo.bench import BenchSettings, bench, queries


def test_queries_are_distinct_and_of_different_lengths():
    qs = queries(20)
    assert len(set(qs)) == 20
    assert len({len(q.split()) for q in qs}) == 3


def test_bench_writes_both_modes_for_every_setting(tmp_path, tiny_vlm):
    settings = BenchSettings(frames=[4, 8], queries_per_video=[1, 3], size=64, videos=2)
    table, figure = tmp_path / "scoring.tsv", tmp_path / "scoring.png"
    bench(str(tiny_vlm), settings, table, figure, tmp_path / "work")
    with open(table) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert {(int(r["frames"]), int(r["queries_per_video"]), r["mode"]) for r in rows} == {
        (f, k, m) for f in (4, 8) for k in (1, 3) for m in ("per_pair", "shared")
    }
    assert all(float(r["decodes_per_video"]) == 1.0 for r in rows)  # decoded once, reused
    # 64 x 64 frames: 2 x 2 visual tokens per pair of frames
    assert {int(r["visual_tokens"]) for r in rows} == {8, 16}
    for r in rows:
        assert int(r["pairs"]) == 2 * int(r["queries_per_video"])
        assert float(r["pairs_per_s"]) > 0
        assert float(r["max_score_diff"]) < 1e-4  # float32: both paths give the same scores
    assert figure.stat().st_size > 0


def test_random_shapes_build_the_named_shapes_and_bench_them(tmp_path, monkeypatch):
    """--random-shapes builds a model with every shape the spec names (here a small one
    with the optional keys the 8B spec uses: untied head, head_dim != hidden / heads,
    fewer key-value heads) and benches it."""
    spec = {
        "architecture": "qwen3_vl",
        "hidden_size": 64,
        "intermediate_size": 96,
        "layers": 2,
        "num_heads": 4,
        "kv_heads": 1,
        "head_dim": 32,
        "tie_embeddings": False,
        "mrope_section": [6, 5, 5],
        "vision_depth": 2,
        "vision_width": 32,
        "vision_intermediate": 48,
        "vision_heads": 1,
        "deepstack_indexes": [1],
        "min_pixels": 4096,
        "max_pixels": 4096,
    }
    monkeypatch.setitem(bench_module.RANDOM_SHAPES, "small-test", spec)
    out = tmp_path / "bench"
    bench_module.main(
        ["--random-shapes", "small-test", "--output-dir", str(out), "--frames", "4"]
        + ["--queries-per-video", "1", "2", "--size", "64", "--videos", "1"]
    )
    config = json.loads((out / "small-test" / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    assert (text["intermediate_size"], text["num_key_value_heads"], text["head_dim"]) == (
        96,
        1,
        32,
    )
    assert (vision["intermediate_size"], vision["num_heads"]) == (48, 1)
    assert config["tie_word_embeddings"] is False
    with open(out / "scoring.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 4 and all(float(r["max_score_diff"]) < 1e-4 for r in rows)


def test_a_query_first_template_is_refused(tmp_path, tiny_vlm):
    settings = BenchSettings(frames=[2], queries_per_video=[1], videos=1, template="sandwich")
    with pytest.raises(ValueError, match="'sandwich' puts the query before the video"):
        bench(str(tiny_vlm), settings, tmp_path / "t.tsv", tmp_path / "t.png", tmp_path / "w")
