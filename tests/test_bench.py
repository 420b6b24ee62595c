"""The scoring benchmark runs end to end on the tiny model and reports what it measured."""

import csv

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
    assert figure.stat().st_size > 0
