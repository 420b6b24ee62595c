"""The scoring profile of a model: how it is prompted, answered and shown the video.

A reranker is scored the way it was trained. Stage 2 writes its profile (prompt
template, answer words, frame and pixel settings) into the `scoring` section of
the model folder's `training_config.json`, and the scorer takes it from there.
A setting given explicitly that disagrees with the model's own is an error that
names both values; one left unset takes the model's value, then the default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

TRAINING_CONFIG = "training_config.json"
VIDEO_KEYS = ("fps", "min_frames", "max_frames", "min_pixels", "max_pixels")
DEFAULTS = {"template": "chat", "answer_words": ("yes", "no")}


class ProfileConflict(ValueError):
    """An explicit scoring setting that differs from what the model was trained with."""


@dataclass(frozen=True)
class ScoringProfile:
    template: str = DEFAULTS["template"]
    answer_words: tuple[str, str] = DEFAULTS["answer_words"]
    video: dict = field(default_factory=dict)  # sampling keys; unset ones take VideoSettings'
    source: str = "defaults"  # where the values came from, for the logs

    def as_dict(self) -> dict:
        return {
            "template": self.template,
            "answer_words": list(self.answer_words),
            "video": dict(self.video),
        }


def profile_for_training(template: str, answer_words, video: dict) -> dict:
    """The `scoring` section that a trained reranker carries in its training_config.json."""
    return ScoringProfile(
        template, tuple(answer_words), {k: video[k] for k in VIDEO_KEYS if k in video}
    ).as_dict()


def trained_profile(model_path) -> dict | None:
    """The `scoring` section of a model folder's training_config.json, if it has one."""
    path = Path(model_path) / TRAINING_CONFIG
    if not path.is_file():
        return None
    try:
        scoring = json.loads(path.read_text(encoding="utf-8")).get("scoring")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{path}: not a JSON object of training settings ({e})") from None
    return scoring


def _flat(template, answer_words, video) -> dict:
    flat = {"template": template, "answer_words": tuple(answer_words) if answer_words else None}
    return flat | {f"video.{k}": (video or {}).get(k) for k in VIDEO_KEYS}


def resolve(
    model_path, template=None, answer_words=None, video: dict | None = None
) -> ScoringProfile:
    """The profile to score `model_path` with; explicit values (not None) must agree with
    the model's own."""
    trained = trained_profile(model_path)
    requested = _flat(template, answer_words, video)
    if trained is None:
        own, source = {}, "settings"
    else:
        own = _flat(trained.get("template"), trained.get("answer_words"), trained.get("video"))
        own = {k: v for k, v in own.items() if v is not None}
        source = str(Path(model_path) / TRAINING_CONFIG)
    conflicts = [
        f"{key} {own[key]!r} (trained) vs {value!r} (asked for)"
        for key, value in requested.items()
        if value is not None and key in own and own[key] != value
    ]
    if conflicts:
        raise ProfileConflict(
            f"{model_path} is scored as it was trained ({source}), but the scoring settings "
            f"differ: {'; '.join(conflicts)}. Leave these settings unset to score it as trained."
        )
    merged = {k: v for k, v in requested.items() if v is not None} | own
    return ScoringProfile(
        template=merged.get("template", DEFAULTS["template"]),
        answer_words=tuple(merged.get("answer_words", DEFAULTS["answer_words"])),
        video={k: merged[f"video.{k}"] for k in VIDEO_KEYS if f"video.{k}" in merged},
        source=source,
    )
