import math

import pytest
import torch

from rankvideo import VLMReranker
from rankvideo.scoring import answer_token_ids, spellings, yes_no_scores
from rankvideo.video import VideoDecodeError, VideoSettings, load_video

DEMO_VIDEO = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=4096)


@pytest.fixture(scope="module")
def reranker(tiny_vlm):
    return VLMReranker(model_path=str(tiny_vlm), video=DEMO_VIDEO, batch_size=4)


def test_every_spelling_of_yes_and_no_counts(reranker):
    tokenizer = reranker.tokenizer
    assert len(spellings("yes")) == 16 and " yEs" in spellings("yes")
    decoded_yes = {tokenizer.decode([i]) for i in reranker.yes_ids}
    decoded_no = {tokenizer.decode([i]) for i in reranker.no_ids}
    assert {"yes", "Yes", "YES", " yes", " Yes", " YES"} <= decoded_yes
    assert {"no", "No", "NO", " no", " No", " NO"} <= decoded_no
    assert all(t.strip().lower() == "yes" for t in decoded_yes)
    assert all(t.strip().lower() == "no" for t in decoded_no)
    assert not set(reranker.yes_ids) & set(reranker.no_ids)
    with pytest.raises(ValueError, match="no single vocabulary token"):
        answer_token_ids(tokenizer, "qzxjvk")
    with pytest.raises(ValueError, match="longer than 8"):
        spellings("antidisestablishmentarianism")


def test_yes_no_scores_sum_over_variants():
    log_probs = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.05, 0.35]]))
    (score,) = yes_no_scores(log_probs, yes_ids=[0, 2], no_ids=[1, 3])
    assert score["logprob_yes"] == pytest.approx(math.log(0.4))
    assert score["logprob_no"] == pytest.approx(math.log(0.25))
    assert score["logit_delta"] == pytest.approx(math.log(0.4 / 0.25))
    assert score["p_yes"] == pytest.approx(0.4 / 0.65)


def test_batched_scores_equal_single_scores(reranker, demo_data):
    videos = sorted(demo_data["videos"].glob("*.mp4"))[:6]
    queries = [
        "a red circle moving left",
        "yes",
        "a much longer query about a blue square that is moving up across the frame",
        "no",
        "a cyan triangle",
        "green",
    ]
    paths = [str(v) for v in videos]
    # one per-pair batch of six different videos, against each pair alone (shared path)
    batched = reranker.score_decoded(queries, [load_video(p, reranker.video) for p in paths])
    assert len(batched) == 6
    for query, path, score in zip(queries, paths, batched, strict=True):
        (single,) = reranker.score_batch(queries=[query], video_paths=[path])
        for field in ("logit_delta", "logprob_yes", "logprob_no", "p_yes"):
            assert score[field] == pytest.approx(single[field], abs=1e-5)
        assert score["p_yes"] == pytest.approx(1 / (1 + math.exp(-score["logit_delta"])))
        assert score["logprob_yes"] < 0 and score["logprob_no"] < 0


def test_video_changes_the_score(reranker, demo_data):
    a, b = sorted(demo_data["videos"].glob("*.mp4"))[:2]
    scores = reranker.score_batch(["a red circle"] * 2, [str(a), str(b)])
    assert scores[0]["logit_delta"] != scores[1]["logit_delta"]


def test_real_clips_of_any_codec_and_length(reranker, real_videos):
    paths = sorted(str(p) for p in real_videos.iterdir())
    settings = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=16384)
    lengths = {load_video(p, settings)[0].shape[0] for p in paths}
    assert len(lengths) > 1  # clips of different lengths share one batch
    wide = VLMReranker(model_path=reranker.model.name_or_path, video=settings, batch_size=8)
    decoded = [load_video(p, settings) for p in paths]
    batched = wide.score_decoded(["people riding bicycles"] * len(paths), decoded)
    for path, score in zip(paths, batched, strict=True):
        (single,) = wide.score_batch(["people riding bicycles"], [path])
        assert score["logit_delta"] == pytest.approx(single["logit_delta"], abs=1e-5)


def test_undecodable_video_names_the_file(reranker, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoDecodeError, match="broken.mp4: cannot decode video: decord"):
        reranker.score_batch(["a query"], [str(broken)])
    with pytest.raises(VideoDecodeError, match="missing.mp4: cannot decode video: no such file"):
        reranker.score_batch(["a query"], [str(tmp_path / "missing.mp4")])
