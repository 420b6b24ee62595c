"""Shared-prefix scoring (one video encode for all of its queries) and decode-once frames."""

import pytest

from rankvideo.pairs import candidate_pairs
from rankvideo.prompt import PROFILES, build_prompt, split_prompt
from rankvideo.rerank import score_pairs
from rankvideo.scoring import VLMReranker
from rankvideo.video import DECODES, VideoSettings, load_video

DEMO_VIDEO = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=4096)
FIELDS = ("logit_delta", "logprob_yes", "logprob_no", "p_yes")
QUERIES = [
    "red",
    "a red circle moving left",
    "a much longer query about a blue square that is moving up across the frame, slowly",
    "yes",
    "a cyan triangle",
    "green square moving down",
    "no no no",
]


def assert_same(shared, per_pair, tolerance=1e-4):
    assert len(shared) == len(per_pair)
    for a, b in zip(shared, per_pair, strict=True):
        for field in FIELDS:
            assert a[field] == pytest.approx(b[field], abs=tolerance), field


VIDEO_FIRST = sorted(name for name, p in PROFILES.items() if p.video_first)


def test_which_profiles_share_the_video():
    assert VIDEO_FIRST == ["chat", "rankvideo-trained", "short"]
    with pytest.raises(ValueError, match="puts the query before the video"):
        split_prompt("a red circle", "qwen3-vl-reranker")


@pytest.mark.parametrize("template", VIDEO_FIRST)
def test_prompt_splits_after_the_video(template):
    prefix, suffix = split_prompt("a red circle", template)
    assert prefix + suffix == build_prompt("a red circle", template)
    assert prefix == split_prompt("something else entirely", template)[0]
    assert "a red circle" in suffix and "a red circle" not in prefix


@pytest.mark.parametrize("template", sorted(PROFILES))
def test_shared_prefix_equals_per_pair(tiny_vlm, demo_data, template):
    """Every profile: the shared prefix where the video comes first, else one pass per pair."""
    reranker = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile=template, batch_size=3)
    assert reranker.shared_prefix == (template in VIDEO_FIRST)
    for path in sorted(demo_data["videos"].glob("*.mp4"))[:3]:
        decoded = load_video(path, reranker.video)
        for k in (1, 2, 3, 7):  # one query, part of a batch, a full batch, over two batches
            queries = QUERIES[:k]
            one_by_one = [reranker.score_decoded([q], [decoded])[0] for q in queries]
            assert_same(reranker.score_video(decoded, queries), one_by_one)
        assert reranker.score_video(decoded, []) == []


def test_a_single_query_takes_one_full_pass(tiny_vlm, demo_data, monkeypatch):
    """The shared prefix pays from two queries up; one query gets one forward pass."""
    import rankvideo.scoring as scoring

    prefixes = []
    encode = scoring.encode_prefix
    monkeypatch.setattr(scoring, "encode_prefix", lambda *a: prefixes.append(1) or encode(*a))
    reranker = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="short", batch_size=4)
    decoded = load_video(sorted(demo_data["videos"].glob("*.mp4"))[0], reranker.video)
    reranker.score_video(decoded, QUERIES[:1])
    assert prefixes == []
    reranker.score_video(decoded, QUERIES[:2])
    assert prefixes == [1]


def test_shared_prefix_on_real_clips_of_different_lengths(tiny_vlm, real_videos):
    settings = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=16384)
    reranker = VLMReranker(str(tiny_vlm), video=settings, profile="chat", batch_size=4)
    paths = sorted(str(p) for p in real_videos.iterdir())
    lengths = {load_video(p, reranker.video)[0].shape[0] for p in paths}
    assert len(lengths) > 1
    queries = ["people riding bicycles", "a rabbit", "a car driving on a road at night"] * 2
    pairs_q = [q for _ in paths for q in queries]
    pairs_v = [p for p in paths for _ in queries]
    shared = reranker.score_batch(pairs_q, pairs_v)
    reranker.shared_prefix = False
    assert_same(shared, reranker.score_batch(pairs_q, pairs_v))
    # the scores differ across videos and queries: the comparison is not vacuous
    assert len({round(s["logit_delta"], 6) for s in shared}) > len(queries)


def test_each_video_is_decoded_once_then_read_from_the_cache(tmp_path, tiny_vlm, demo_data):
    videos = sorted(demo_data["videos"].glob("*.mp4"))[:4]
    manifest = {v.stem: str(v) for v in videos}
    queries = {"q1": "a red circle moving left", "q2": "a green square", "q3": "moving up"}
    cmap = {v: ["q1", "q2", "q3"] for v in manifest}
    cmap[videos[0].stem] = ["q2"]
    pairs = candidate_pairs([cmap])
    cached = VideoSettings(**{**DEMO_VIDEO.__dict__, "cache": str(tmp_path / "frames")})
    reranker = VLMReranker(str(tiny_vlm), video=cached, batch_size=2)

    before = DECODES.copy()
    first = score_pairs(reranker, pairs, queries, manifest, tmp_path / "a.jsonl")
    assert DECODES["decoded"] - before["decoded"] == len(manifest)  # once per unique video
    assert DECODES["cached"] == before["cached"]
    assert len(list((tmp_path / "frames").rglob("*.pt"))) == len(manifest)

    # a later step (here: per-pair scoring) reads every video from the cache
    reranker.shared_prefix = False
    second = score_pairs(reranker, pairs, queries, manifest, tmp_path / "b.jsonl")
    assert DECODES["decoded"] - before["decoded"] == len(manifest)
    assert DECODES["cached"] - before["cached"] == len(manifest)
    assert_same(first, second)


def test_cached_frames_equal_fresh_frames(tmp_path, demo_data):
    path = sorted(demo_data["videos"].glob("*.mp4"))[0]
    cached = VideoSettings(**{**DEMO_VIDEO.__dict__, "cache": str(tmp_path)})
    fresh_frames, fresh_meta = load_video(path, DEMO_VIDEO)
    load_video(path, cached)  # stores
    frames, meta = load_video(path, cached)  # reads
    assert (frames == fresh_frames).all() and meta == fresh_meta
    # another sampling setting is another entry, not a stale hit
    other = VideoSettings(**{**cached.__dict__, "fps": 4.0})
    assert load_video(path, other)[0].shape[0] != frames.shape[0]
    assert len(list(tmp_path.rglob("*.pt"))) == 2


def test_an_unreadable_cache_entry_is_decoded_again(tmp_path, demo_data):
    path = sorted(demo_data["videos"].glob("*.mp4"))[0]
    cached = VideoSettings(**{**DEMO_VIDEO.__dict__, "cache": str(tmp_path)})
    fresh = load_video(path, cached)[0]
    (entry,) = tmp_path.rglob("*.pt")
    entry.write_bytes(b"truncated")
    before = DECODES.copy()
    again = load_video(path, cached)[0]
    assert (again == fresh).all() and DECODES["decoded"] == before["decoded"] + 1
    assert load_video(path, cached)[0].shape == fresh.shape  # replaced: read back now
    assert DECODES["cached"] == before["cached"] + 1


def test_the_frame_cache_stays_under_its_bound_least_recently_used_out(tmp_path, demo_data):
    """A bound of 4.6 entries: storing more evicts the least recently used, a read
    marks its entry used, and every frame read back equals a fresh decode."""
    import os

    paths = sorted(demo_data["videos"].glob("*.mp4"))[:6]
    probe = VideoSettings(**{**DEMO_VIDEO.__dict__, "cache": str(tmp_path / "probe")})
    load_video(paths[0], probe)
    (entry,) = (tmp_path / "probe").rglob("*.pt")
    entry_bytes = entry.stat().st_size  # the demo's clips give entries of one size
    cache = tmp_path / "bounded"
    bound = VideoSettings(
        **{**DEMO_VIDEO.__dict__, "cache": str(cache), "cache_gb": 4.6 * entry_bytes / 2**30}
    )
    fresh = {p: load_video(p, DEMO_VIDEO)[0] for p in paths}
    for i, p in enumerate(paths[:3]):
        load_video(p, bound)
        for entry in cache.rglob("*.pt"):  # distinct ages, whatever the clock's resolution
            os.utime(entry, ns=(10**18 + i, 10**18 + i)) if entry.stem.startswith(p.stem) else 0
    assert (load_video(paths[0], bound)[0] == fresh[paths[0]]).all()  # paths[0] used now
    for p in paths[3:]:
        load_video(p, bound)
    kept = {e.stem.rsplit("-", 1)[0] for e in cache.rglob("*.pt")}
    assert sum(e.stat().st_size for e in cache.rglob("*.pt")) <= 4.6 * entry_bytes
    # the two least recently used went; the first, read after them, stayed
    assert kept == {p.stem for p in (paths[0], *paths[3:])}
    for p in paths:
        assert (load_video(p, bound)[0] == fresh[p]).all()
