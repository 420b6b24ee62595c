"""What the project hands Qwen3-VL equals what the authors' stack hands it.

The fixtures in tests/fixtures/reference come from the reference environment
(transformers 4.57.1, qwen-vl-utils 0.0.14: the RANKVIDEO release's pins), built and
run by `devtools/reference/build.sh` with code that imports nothing of rankvideo. Here
the project's own paths run on the same tiny model and clips, and what reaches the
model's forward (input ids, pixels, `video_grid_thw`, the multimodal-rope positions
the language model receives) is captured there and compared; so are the scores.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from rankvideo.scoring import VLMReranker
from rankvideo.video import VideoSettings, load_video

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
CLIPS = FIXTURES / "clips"
SCORED = ("chat", "short", "rankvideo-release", "rankvideo-trained", "qwen3-vl-reranker")
DEMO_FRAMES = {"fps": 2.0, "max_frames": 8, "min_pixels": 4096, "max_pixels": 4096}
QUERY_FIRST = ("rankvideo-release", "qwen3-vl-reranker")  # no shared video prefix
TOLERANCE = 1e-4  # float32 log-probabilities, transformers 4.57.1 against this project's


def fixture(clip: str, case: str) -> dict:
    return json.loads((FIXTURES / f"{clip}.{case}.json").read_text())


CLIP_NAMES = sorted(p.stem for p in CLIPS.glob("*.mp4"))


class Captured:
    """What the model gets, one entry per call: the keyword inputs of its forward, the
    pixels and grid its vision tower reads, the positions its language model receives
    and the last position's logits it returns."""

    def __init__(self, model):
        self.calls: list[dict] = []
        self.vision: list[tuple] = []
        self.positions: list[torch.Tensor] = []
        self.logits: list[torch.Tensor] = []
        self._hooks = [
            model.register_forward_pre_hook(self._inputs, with_kwargs=True),
            model.register_forward_hook(self._logits),
            model.model.visual.register_forward_pre_hook(self._pixels, with_kwargs=True),
            model.model.language_model.register_forward_pre_hook(self._positions, with_kwargs=True),
        ]

    def _inputs(self, _, args, kwargs):
        self.calls.append({k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)})

    def _logits(self, _, args, output):
        self.logits.append(output.logits[:, -1].detach().float())

    def _pixels(self, _, args, kwargs):
        self.vision.append((args[0].detach().clone(), kwargs["grid_thw"].tolist()))

    def _positions(self, _, args, kwargs):
        rope = kwargs["position_ids"]
        self.positions.append(rope[-3:] if rope.shape[0] == 4 else rope)

    def inputs(self, reference: dict, calls: int = 1) -> None:
        """The first `calls` calls' ids and positions, one after the other, and the
        pixels the vision tower read equal the reference's."""
        [(pixels, grid)] = self.vision
        ids = [t for call in self.calls[:calls] for t in call["input_ids"][0].tolist()]
        positions = torch.cat([p[:, 0] for p in self.positions[:calls]], dim=-1)
        assert_inputs(ids, pixels, grid, positions.tolist(), reference)

    def close(self):
        for hook in self._hooks:
            hook.remove()


@pytest.fixture(scope="module")
def tiny(tiny_vlm):
    expected = {fixture(c, "chat")["model_sha256"] for c in CLIP_NAMES}
    weights = hashlib.sha256((Path(tiny_vlm) / "model.safetensors").read_bytes()).hexdigest()
    assert expected == {weights}, (
        "the tiny model differs from the one the reference fixtures were made with: "
        "rebuild them with devtools/reference/build.sh"
    )
    return str(tiny_vlm)


def pixels(tensor: torch.Tensor) -> dict:
    flat = tensor.detach().to(torch.float32).contiguous()
    return {
        "shape": list(flat.shape),
        "sha256": hashlib.sha256(flat.numpy().tobytes()).hexdigest(),
        "sum": float(flat.double().sum()),
        "head": [float(x) for x in flat.flatten()[:8]],
    }


def assert_inputs(ids, pixel_values, grid, positions, reference: dict):
    """Ids, grid, rope positions and pixels equal the reference's, with a readable diff."""
    if ids != reference["input_ids"]:
        at = next(
            (
                i
                for i, (a, b) in enumerate(zip(ids, reference["input_ids"], strict=False))
                if a != b
            ),
            min(len(ids), len(reference["input_ids"])),
        )
        raise AssertionError(
            f"{reference['clip']} {reference['case']}: input ids differ from transformers "
            f"{reference['transformers']}'s at position {at} (ours {len(ids)} ids, "
            f"reference {len(reference['input_ids'])}): ours {ids[at : at + 6]}, "
            f"reference {reference['input_ids'][at : at + 6]}"
        )
    assert grid == reference["video_grid_thw"]
    assert positions == reference["position_ids"], "multimodal-rope positions differ"
    ours = pixels(pixel_values)
    assert ours["shape"] == reference["pixel_values_videos"]["shape"]
    assert ours == reference["pixel_values_videos"], (
        f"pixel values differ: sum {ours['sum']} vs {reference['pixel_values_videos']['sum']}"
    )


def assert_scores(score: dict, reference: dict):
    for key in ("logprob_yes", "logprob_no", "logit_delta"):
        assert score[key] == pytest.approx(reference[key], abs=TOLERANCE), key


def reranker(model: str, case: str) -> VLMReranker:
    video = DEMO_FRAMES if case in ("chat", "short") else None  # the others: the profile's
    return VLMReranker(model, video=video, profile=case)


@pytest.mark.parametrize("clip", CLIP_NAMES)
@pytest.mark.parametrize("case", SCORED)
def test_scoring_per_pair_feeds_the_authors_inputs(tiny, clip, case):
    reference = fixture(clip, case)
    scorer = reranker(tiny, case)
    assert (scorer.yes_ids, scorer.no_ids) == (reference["yes_ids"], reference["no_ids"])
    decoded = load_video(CLIPS / f"{clip}.mp4", scorer.video)
    seen = Captured(scorer.model)
    try:
        [score] = scorer.score_decoded([reference["query"]], [decoded])
    finally:
        seen.close()
    seen.inputs(reference)
    assert_scores(score, reference)


@pytest.mark.parametrize("clip", CLIP_NAMES)
@pytest.mark.parametrize("case", [c for c in SCORED if c not in QUERY_FIRST])
def test_shared_prefix_feeds_the_authors_inputs(tiny, clip, case):
    """Prefix pass + suffix pass together hand the model the reference's ids and positions."""
    reference = fixture(clip, case)
    scorer = reranker(tiny, case)
    assert scorer.shared_prefix
    decoded = load_video(CLIPS / f"{clip}.mp4", scorer.video)
    scorer._split_checked = True  # the split check's own full pass is not what is tested
    seen = Captured(scorer.model)
    try:
        scores = scorer.score_video(decoded, [reference["query"]] * 2)
    finally:
        seen.close()
    assert len(seen.calls) == 2  # the prefix, then both suffixes in one batch
    seen.inputs(reference, calls=2)
    for score in scores:
        assert_scores(score, reference)


@pytest.mark.parametrize("clip", CLIP_NAMES)
def test_captions_feed_the_authors_inputs(tiny, clip):
    from rankvideo.captioner import Captioner

    reference = fixture(clip, "captions")
    captioner = Captioner(tiny, video=VideoSettings(**DEMO_FRAMES), max_new_tokens=8)
    decoded = load_video(CLIPS / f"{clip}.mp4", captioner.video)
    seen = Captured(captioner.model)
    try:
        [caption] = captioner.caption_decoded([decoded])
    finally:
        seen.close()
    seen.inputs(reference)  # generation's first forward reads the whole prompt
    first = torch.log_softmax(seen.logits[0][0], dim=-1).topk(5)
    assert first.indices.tolist() == reference["first_step_top_ids"]
    assert first.values.tolist() == pytest.approx(
        reference["first_step_top_logprobs"], abs=TOLERANCE
    )
    generated = [int(logits[0].argmax()) for logits in seen.logits]
    assert generated == reference["generated"]
    assert caption["tokens"] == len(reference["generated"])


def model_inputs(batch: dict) -> dict:
    """A collator's batch less the keys its trainer's loss reads."""
    return {k: v for k, v in batch.items() if k not in TRAINING_KEYS}


TRAINING_KEYS = ("labels", "logits_to_keep", "group_labels", "teacher_p_yes")


def forward(model, batch: dict) -> Captured:
    seen = Captured(model)
    try:
        with torch.inference_mode():
            model(**model_inputs(batch))
    finally:
        seen.close()
    return seen


@pytest.mark.parametrize("clip", CLIP_NAMES)
def test_stage1_collator_feeds_the_authors_inputs(tiny, clip):
    from rankvideo.captioner import DEFAULT_PROMPT
    from rankvideo.train_perception import CaptionCollator

    reference = fixture(clip, "caption-target")
    scorer = reranker(tiny, "chat")
    collator = CaptionCollator(scorer.processor, VideoSettings(**DEMO_FRAMES), DEFAULT_PROMPT)
    caption = "A red circle moves to the left."
    batch = collator([{"videos": [str(CLIPS / f"{clip}.mp4")], "caption": caption, "doc_id": clip}])
    forward(scorer.model, batch).inputs(reference)


@pytest.mark.parametrize("clip", CLIP_NAMES)
@pytest.mark.parametrize("case", SCORED)
def test_stage2_collator_feeds_the_authors_inputs(tiny, clip, case):
    from rankvideo.scoring import yes_no_scores
    from rankvideo.train_reranker import GroupCollator

    reference = fixture(clip, case)
    scorer = reranker(tiny, case)
    collator = GroupCollator(scorer.processor, scorer.video, case)
    pair = {"query": reference["query"], "videos": [str(CLIPS / f"{clip}.mp4")], "true_label": 1}
    seen = forward(scorer.model, collator([{"query_id": "q", "pairs": [pair]}]))
    seen.inputs(reference)
    [score] = yes_no_scores(seen.logits[0], scorer.yes_ids, scorer.no_ids)
    assert_scores(score, reference)


def test_the_video_span_follows_the_processors_behaviour(tiny):
    """The form is chosen by what a processor does with it, not by its version."""
    from transformers import AutoProcessor

    from rankvideo import models
    from rankvideo.prompt import VIDEO

    processor = AutoProcessor.from_pretrained(tiny)
    # transformers >= 5.10 keeps the template's outer pair: the bare pad is written
    assert models.video_span(processor) == models.BARE_VIDEO

    class ReplacesTheWholeSpan(type(processor)):  # as transformers 4.57 and vLLM do
        def __call__(self, text=None, **kwargs):
            text = [t.replace(VIDEO, models.BARE_VIDEO) for t in text]
            return super().__call__(text=text, **kwargs)

    whole = ReplacesTheWholeSpan.from_pretrained(tiny)
    assert models.video_span(whole) == VIDEO

    class AlwaysNested(type(processor)):  # no form gives the authors' layout
        def __call__(self, text=None, **kwargs):
            text = [
                t.replace(VIDEO, models.BARE_VIDEO).replace(models.BARE_VIDEO, VIDEO) for t in text
            ]
            return super().__call__(text=text, **kwargs)

    with pytest.raises(models.VideoSpanError, match="AlwaysNested"):
        models.video_span(AlwaysNested.from_pretrained(tiny))


def test_alternating_spans():
    from rankvideo.models import _alternating_spans

    start, end, pad, stamp = 1, 2, 3, 9
    assert _alternating_spans([stamp, start, pad, end, stamp, start, pad, end], start, end, pad)
    assert _alternating_spans([start, pad, pad, end], start, end, pad)  # Qwen2.5-VL
    assert not _alternating_spans([start, stamp, start, pad, end, end], start, end, pad)
    assert not _alternating_spans([stamp, pad, stamp], start, end, pad)
    assert not _alternating_spans([start, end], start, end, pad)
