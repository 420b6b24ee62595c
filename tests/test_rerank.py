import logging
import shutil

import pandas as pd
import pytest

from rankvideo import evaluate as evaluate_cli
from rankvideo import formats, significance
from rankvideo import rerank as rerank_cli
from rankvideo.pairs import candidate_pairs, merge_scores, shard_of
from rankvideo.rerank import rerank_shard, score_pairs, system_name
from rankvideo.scoring import VLMReranker
from rankvideo.video import VideoSettings, load_video

DEMO_VIDEO = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=4096)


@pytest.fixture(scope="module")
def reranker(tiny_vlm):
    return VLMReranker(model_path=str(tiny_vlm), video=DEMO_VIDEO, batch_size=3)


@pytest.fixture
def small_task(tmp_path, demo_data):
    """Four videos (one broken copy on request), three queries, nine pairs."""
    videos = sorted(demo_data["videos"].glob("*.mp4"))[:4]
    manifest = {v.stem: str(v) for v in videos}
    queries = {"q1": "a red circle moving left", "q2": "a green square", "q3": "moving up"}
    ids = list(manifest)
    cmap = {ids[0]: ["q1", "q2"], ids[1]: ["q1", "q3"], ids[2]: ["q2"], ids[3]: ["q1", "q2", "q3"]}
    return manifest, queries, cmap, ids


def test_pairs_split_into_disjoint_shards():
    maps = [{"v1": ["q1", "q2"], "v2": ["q1"]}, {"v1": ["q2", "q3"], "v3": ["q9"]}]
    pairs = candidate_pairs(maps)
    assert pairs == [("v1", "q1"), ("v1", "q2"), ("v1", "q3"), ("v2", "q1"), ("v3", "q9")]
    shards = [[p for p in pairs if shard_of(p[0], 3) == s] for s in range(3)]
    assert sorted(sum(shards, [])) == pairs
    assert shard_of("v1", 3) == shard_of("v1", 3)  # stable, not Python's salted hash


def test_resume_keeps_finished_pairs(tmp_path, monkeypatch, reranker, small_task):
    manifest, queries, cmap, ids = small_task
    pairs = candidate_pairs([cmap])
    full = score_pairs(reranker, pairs, queries, manifest, tmp_path / "full.jsonl")
    assert len(full) == len(pairs) == 8
    # an earlier attempt stopped after two videos (four pairs), its last line half written
    real = reranker.score_video
    calls = []

    def stops_at_the_third_video(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt("stopped")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reranker, "score_video", stops_at_the_third_video)
    with pytest.raises(KeyboardInterrupt):
        score_pairs(reranker, pairs, queries, manifest, tmp_path / "out.jsonl")
    monkeypatch.setattr(reranker, "score_video", real)
    partial = tmp_path / "out.jsonl.partial"
    done = [{**r, "logit_delta": 123.0} for _, r in formats.read_jsonl(partial)]
    assert len(done) == 4
    formats.write_jsonl(partial, done[:3])
    with open(partial, "a") as f:
        f.write('{"query_id": "q1", "doc_')
    resumed = score_pairs(reranker, pairs, queries, manifest, tmp_path / "out.jsonl")
    assert not partial.exists()
    assert [r["logit_delta"] for r in resumed[:3]] == [123.0] * 3  # not recomputed
    for a, b in zip(resumed[3:], full[3:], strict=True):
        assert a["logit_delta"] == pytest.approx(b["logit_delta"], abs=1e-5)


def test_broken_video_fails_only_its_pairs(tmp_path, reranker, small_task):
    manifest, queries, cmap, ids = small_task
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    manifest = {**manifest, ids[1]: str(broken)}
    pairs = candidate_pairs([cmap])
    with pytest.raises(RuntimeError, match=r"1 videos could not be decoded.*broken.mp4"):
        score_pairs(reranker, pairs, queries, manifest, tmp_path / "out.jsonl")
    kept = [r for _, r in formats.read_jsonl(tmp_path / "out.jsonl.partial")]
    assert len(kept) == 6 and all(r["doc_id"] != ids[1] for r in kept)
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_ids_are_named(tmp_path, reranker, small_task):
    manifest, queries, cmap, ids = small_task
    with pytest.raises(ValueError, match=r"1 unknown queries \['q7'\]"):
        score_pairs(reranker, [(ids[0], "q7")], queries, manifest, tmp_path / "x.jsonl")


def test_merge_requires_every_candidate(tmp_path):
    shard = tmp_path / "0.jsonl"
    score = {"logprob_yes": -1.0, "logprob_no": -2.0, "logit_delta": 1.0, "p_yes": 0.73}
    formats.write_jsonl(shard, [{"query_id": "q1", "doc_id": "v1", **score}])
    formats.write_candidates(tmp_path / "c.json", {"v1": ["q1", "q2"]})
    formats.write_run_json(tmp_path / "fs.json", {"q1": {"v1": 1.0}, "q2": {"v1": 1.0}})
    with pytest.raises(ValueError, match=r"1 candidate pairs .* no score.*'q2', 'v1'"):
        merge_scores(
            [shard], tmp_path / "c.json", tmp_path / "fs.json", 5, tmp_path / "m.jsonl",
            tmp_path / "m.run", "s",
        )  # fmt: skip


def test_merge_refuses_a_pair_scored_twice(tmp_path):
    score = {"logprob_yes": -1.0, "logprob_no": -2.0, "logit_delta": 1.0, "p_yes": 0.73}
    for shard in (0, 1):
        formats.write_jsonl(
            tmp_path / f"{shard}.jsonl", [{"query_id": "q1", "doc_id": "v1", **score}]
        )
    formats.write_candidates(tmp_path / "c.json", {"v1": ["q1"]})
    formats.write_run_json(tmp_path / "fs.json", {"q1": {"v1": 1.0}})
    with pytest.raises(
        formats.FormatError, match=r"1.jsonl:1: pair \('q1', 'v1'\) is scored twice"
    ):
        merge_scores(
            [tmp_path / "0.jsonl", tmp_path / "1.jsonl"],
            tmp_path / "c.json",
            tmp_path / "fs.json",
            5,
            tmp_path / "m.jsonl",
            tmp_path / "m.run",
            "s",
        )


def test_the_merged_run_file_gives_trec_eval_the_evaluated_row(tmp_path):
    """trec_eval (pytrec_eval) on the written .run reports what `evaluate` puts in the
    table: the reranked top depth with first-stage tie order, then the first-stage rest."""
    import pytrec_eval

    from rankvideo.evaluate import evaluate

    docs = [f"v{i}" for i in range(8)]
    first = {  # tied first-stage scores, so the tie order matters
        "q1": {d: float(8 - i // 2) for i, d in enumerate(docs)},
        "q2": {d: 1.0 for d in docs},
    }
    qrels = {"q1": {"v3": 2, "v6": 1}, "q2": {"v0": 1, "v5": 1}}
    formats.write_run_json(tmp_path / "fs.json", first)
    formats.write_qrels(tmp_path / "qrels.txt", qrels)
    depth = 4
    cmap = formats.invert_run(first, depth)
    formats.write_candidates(tmp_path / "c.json", cmap)
    logits = {"v0": 0.2, "v1": 0.5, "v2": -1.0, "v3": 0.5, "v4": 2.0, "v5": 0.5, "v6": 0.0}
    logits["v7"] = 0.5
    records = [
        {"query_id": q, "doc_id": v, "logprob_yes": -1.0, "logprob_no": -1.0,
         "logit_delta": logits[v], "p_yes": 0.5}
        for v, qids in cmap.items() for q in qids
    ]  # fmt: skip
    formats.write_jsonl(tmp_path / "0.jsonl", records)
    merge_scores(
        [tmp_path / "0.jsonl"], tmp_path / "c.json", tmp_path / "fs.json", depth,
        tmp_path / "s.jsonl", tmp_path / "s.run", "s",
    )  # fmt: skip
    measures = {"ndcg_cut.5,10", "recall.5,10"}
    by_trec_eval = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(
        formats.read_run(tmp_path / "s.run")
    )
    _, per_query = evaluate(
        tmp_path / "qrels.txt", {"r": tmp_path / "fs.json"}, {("r", "s"): tmp_path / "s.jsonl"},
        depth, cutoffs=(5, 10),
    )  # fmt: skip
    ours = per_query[per_query.system == "s"].set_index("query_id")
    for q in qrels:
        assert ours.loc[q, "ndcg@5"] == pytest.approx(by_trec_eval[q]["ndcg_cut_5"], abs=1e-12)
        assert ours.loc[q, "recall@10"] == pytest.approx(by_trec_eval[q]["recall_10"], abs=1e-12)
    run_lines = (tmp_path / "s.run").read_text().splitlines()
    assert len(run_lines) == 16  # every first-stage document, not only the reranked ones
    # q1: v1 and v3 tie and keep their first-stage order; v4 (2.0) is below the depth
    assert [line.split()[2] for line in run_lines[:8]] == "v1 v3 v0 v2 v5 v4 v7 v6".split()
    assert [line.split()[2] for line in run_lines[8:12]] == "v4 v7 v5 v6".split()


@pytest.mark.parametrize("shard, shards", [(2, 2), (-1, 2), (0, 0)])
def test_a_shard_outside_the_split_is_an_error(tmp_path, shard, shards):
    formats.write_candidates(tmp_path / "c.json", {"v1": ["q1"]})
    with pytest.raises(ValueError, match=f"shard {shard} of {shards}"):
        rerank_shard([tmp_path / "c.json"], None, None, tmp_path / "o.jsonl", shard, shards, {})


def test_models_of_one_folder_name_get_their_own_outputs():
    names = {system_name(p) for p in ("results/stage1/model", "results/stage2/model")}
    assert names == {"results__stage1__model", "results__stage2__model"}
    assert system_name("Qwen/Qwen3-VL-8B-Instruct") == "Qwen__Qwen3-VL-8B-Instruct"
    assert system_name("./results/stage2/model/") == "results__stage2__model"


def test_command_line_entry_points(tmp_path, tiny_vlm, small_task, capsys):
    manifest, queries, cmap, ids = small_task
    video_dir = tmp_path / "videos"
    video_dir.mkdir()
    for path in manifest.values():
        shutil.copy(path, video_dir)
    formats.write_candidates(tmp_path / "v2q.json", cmap)
    formats.write_queries(tmp_path / "queries.tsv", queries)
    out = tmp_path / "reranking"
    rerank_cli.main(
        ["--model", str(tiny_vlm), "--video2queries", str(tmp_path / "v2q.json")]
        + ["--query-mapping", str(tmp_path / "queries.tsv"), "--video-dir", str(video_dir)]
        + ["--output-dir", str(out), "--max-frames", "8", "--min-pixels", "4096"]
        + ["--max-pixels", "4096", "--name", "base"]
    )
    records = [r for _, r in formats.read_jsonl(out / "base.jsonl")]
    assert len(records) == 8 and formats.read_run(out / "base.run").keys() == {"q1", "q2", "q3"}
    # the release's prompt by name; the output is named after the model's whole path
    rerank_cli.main(
        ["--model", str(tiny_vlm), "--video2queries", str(tmp_path / "v2q.json")]
        + ["--query-mapping", str(tmp_path / "queries.tsv"), "--video-dir", str(video_dir)]
        + ["--output-dir", str(out), "--max-frames", "8", "--min-pixels", "4096"]
        + ["--max-pixels", "4096", "--profile", "rankvideo-release"]
    )
    released = [r for _, r in formats.read_jsonl(out / f"{system_name(str(tiny_vlm))}.jsonl")]
    assert len(released) == 8
    assert {(r["query_id"], r["doc_id"]) for r in released} == {
        (r["query_id"], r["doc_id"]) for r in records
    }
    assert released != records  # another prompt, other scores
    first_stage = {q: {} for q in queries}
    for rank, (video, qids) in enumerate(cmap.items()):
        for q in qids:
            first_stage[q][video] = -float(rank)
    formats.write_run_json(tmp_path / "fs.json", first_stage)
    formats.write_qrels(tmp_path / "qrels.txt", {"q1": {ids[3]: 2}, "q2": {ids[2]: 1}})
    evaluate_cli.main(
        ["--pred-dir", str(out), "--first-stage", str(tmp_path / "fs.json")]
        + ["--qrels", str(tmp_path / "qrels.txt"), "--depth", "5"]
    )
    printed = capsys.readouterr().out
    assert "first_stage" in printed and "base" in printed
    assert (out / "ndcg.tsv").exists() and (out / "ndcg_per_query.tsv").exists()


@pytest.fixture
def reranker_limit(monkeypatch):
    """Sets the qwen3-vl-reranker profile's input limit (10,240 tokens) to a small one."""
    import dataclasses

    from rankvideo import prompt

    def limit(max_length):
        profile = dataclasses.replace(prompt.PROFILES["qwen3-vl-reranker"], max_length=max_length)
        monkeypatch.setitem(prompt.PROFILES, "qwen3-vl-reranker", profile)

    return limit


def test_a_cut_that_removes_the_query_gives_its_video_one_score(
    tmp_path, tiny_vlm, small_task, reranker_limit, caplog
):
    manifest, queries, cmap, ids = small_task
    reranker = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="qwen3-vl-reranker")
    pairs = candidate_pairs([{ids[0]: ["q1", "q2"], ids[3]: ["q1", "q2", "q3"]}])
    whole = score_pairs(reranker, pairs, queries, manifest, tmp_path / "whole.jsonl")
    assert all(r["cut_tokens"] == 0 and r["query_lost"] is False for r in whole)
    assert len({r["logit_delta"] for r in whole if r["doc_id"] == ids[3]}) == 3
    # 60 tokens: the system text alone outlasts the budget left beside the special tokens
    reranker_limit(60)
    caplog.set_level(logging.INFO)
    cut = score_pairs(reranker, pairs, queries, manifest, tmp_path / "cut.jsonl")
    assert all(r["cut_tokens"] > 0 and r["query_lost"] is True for r in cut)
    for video in (ids[0], ids[3]):
        scores = {r["logit_delta"] for r in cut if r["doc_id"] == video}
        assert len(scores) == 1  # every query of the video: one score
    assert "5 of 5 pairs cut to the model's input limit; 5 of them (2 videos" in caplog.text
    # the merge carries the fields; the table's notes count them
    formats.write_candidates(tmp_path / "c.json", {ids[0]: ["q1", "q2"], ids[3]: list(queries)})
    first_stage = {"q1": {ids[0]: 2.0, ids[3]: 1.0}, "q2": {ids[0]: 2.0, ids[3]: 1.0}}
    formats.write_run_json(tmp_path / "fs.json", first_stage | {"q3": {ids[3]: 1.0}})
    merged = tmp_path / "rerank" / "strong"
    merged.mkdir(parents=True)
    for name, shard in (("qwen", "cut.jsonl"), ("whole", "whole.jsonl")):
        merge_scores(
            [tmp_path / shard], tmp_path / "c.json", tmp_path / "fs.json", 5,
            merged / f"{name}.jsonl", merged / f"{name}.run", name,
        )  # fmt: skip
    assert "qwen on" in caplog.text and "5 of 5 pairs cut" in caplog.text
    per_query = pd.DataFrame(
        [
            {"retriever": "strong", "system": s, "query_id": q, "in_run": True, "ndcg@10": v}
            for s in ("first_stage", "whole", "qwen")
            for q, v in (("q1", 0.5), ("q2", 0.25), ("q3", 1.0))
        ]
    )
    per_query.to_csv(tmp_path / "per_query.tsv", sep="\t", index=False)
    significance.run(
        tmp_path / "per_query.tsv", tmp_path / "s.tsv", tmp_path / "table.md",
        resamples=100, reranked=sorted(merged.glob("*.jsonl")),
    )  # fmt: skip
    notes = (tmp_path / "table.md").read_text().split("\nNotes:\n\n")[1].splitlines()
    assert notes == [
        "- qwen on strong: 5 of 5 reranked pairs were longer than the model's input limit "
        "and cut as its authors cut them; 5 of them (2 videos) kept no query token, so "
        "every query of such a video got one score."
    ]
    significance.run(
        tmp_path / "per_query.tsv", tmp_path / "s.tsv", tmp_path / "table.md",
        resamples=100, reranked=[merged / "whole.jsonl"],
    )  # fmt: skip
    assert "Notes" not in (tmp_path / "table.md").read_text()  # nothing cut, no notes


def test_a_cut_that_keeps_part_of_the_query(tiny_vlm, demo_data, reranker_limit):
    reranker = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="qwen3-vl-reranker")
    decoded = load_video(str(sorted(demo_data["videos"].glob("*.mp4"))[0]), reranker.video)
    short, long = "a red circle", "a red circle " + "moving left and then right " * 6
    full = reranker.inputs([short], [decoded])["input_ids"][0].tolist()
    positions = reranker.query_positions(short, len(full))
    assert reranker.tokenizer.decode([full[p] for p in positions]) == short
    # the short prompt just fits; the long one loses the end of its query and what follows
    reranker_limit(len(full) - 5)
    inputs, cuts = reranker._prepared([short, long], [decoded, decoded])
    assert cuts[0] == {"cut_tokens": 0, "query_lost": False}
    assert cuts[1]["cut_tokens"] > 0 and cuts[1]["query_lost"] is False
    long_full = len(full) + cuts[1]["cut_tokens"]
    kept_text = reranker.tokenizer.decode(inputs["input_ids"][1])
    assert "<Query>:a red circle moving" in kept_text and "<Document>" not in kept_text
    assert len(reranker.query_positions(long, long_full)) > len(positions)
    # a limit below the text before the query: no query token survives
    reranker_limit(40)
    _, cuts = reranker._prepared([short, long], [decoded, decoded])
    assert all(c["cut_tokens"] > 0 and c["query_lost"] for c in cuts)
