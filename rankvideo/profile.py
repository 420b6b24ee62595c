"""The scoring profile of a model: how it is prompted, answered and shown the video.

A reranker is scored the way it was built to be scored:

- a model trained here carries its profile (prompt profile, answer words, frame and
  pixel settings) in the `scoring` section of its `training_config.json`; a setting
  given explicitly that disagrees with it is an error that names both values;
- a known checkpoint (`prompt.KNOWN_MODELS`: the released RANKVIDEO weights,
  Qwen3-VL-Reranker), by hub id or a folder named like one, takes its authors'
  profile; an explicit profile wins, and the log says so;
- anything else takes the settings given, then the defaults (`chat`).

Frame and pixel settings: explicit ones first, then the trained model's, then the
prompt profile's defaults (e.g. the release's 32 frames of 128 visual tokens).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from rankvideo.prompt import KNOWN_MODELS, get_profile

log = logging.getLogger(__name__)

TRAINING_CONFIG = "training_config.json"
VIDEO_KEYS = ("fps", "min_frames", "max_frames", "min_pixels", "max_pixels")
DEFAULTS = {"template": "chat", "answer_words": ("yes", "no")}  # models of no profile


class ProfileConflict(ValueError):
    """An explicit scoring setting that differs from what the model was trained with."""


@dataclass(frozen=True)
class ScoringProfile:
    template: str = DEFAULTS["template"]  # the prompt profile (rankvideo.prompt.PROFILES)
    answer_words: tuple[str, str] = DEFAULTS["answer_words"]
    video: dict = field(default_factory=dict)  # sampling keys; unset ones take VideoSettings'
    source: str = "defaults"  # where the values came from, for the logs

    @property
    def answers(self) -> str:
        """How the answer tokens are found (rankvideo.scoring.answer_ids)."""
        return get_profile(self.template).answers

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


def known_profile(model_path) -> str | None:
    """The authors' profile of a known checkpoint: its hub id, a folder named like it
    (`.../hltcoe/RankVideo`) or its Hugging Face cache folder."""
    path = os.path.normpath(str(model_path)).replace(os.sep, "/").lower()
    for hub_id, name in KNOWN_MODELS.items():
        hub = hub_id.lower()
        if path == hub or path.endswith("/" + hub) or f"models--{hub.replace('/', '--')}" in path:
            return name
    return None


def resolve(
    model_path, template=None, answer_words=None, video: dict | None = None
) -> ScoringProfile:
    """The profile to score `model_path` with; explicit values (not None) must agree with
    a model trained here, and win over a known checkpoint's profile."""
    trained = trained_profile(model_path)
    requested = _flat(template, answer_words, video)
    if trained is None:
        own, source = {}, "settings"
        known = known_profile(model_path)
        if known and template and template != known:
            log.info(
                "%s: scored with %r as asked, not its authors' %r", model_path, template, known
            )
        elif known:
            own, source = {"template": known}, f"the authors' profile of {model_path}"
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
                f"{model_path} is scored as it was trained ({source}), but the scoring "
                f"settings differ: {'; '.join(conflicts)}. Leave these settings unset to "
                "score it as trained."
            )
    merged = own | {k: v for k, v in requested.items() if v is not None}
    prompt = get_profile(merged.get("template", DEFAULTS["template"]))
    defaults = {f"video.{k}": v for k, v in prompt.video.items()}
    merged = defaults | merged
    return ScoringProfile(
        template=prompt.name,
        answer_words=tuple(merged.get("answer_words", prompt.answer_words)),
        video={k: merged[f"video.{k}"] for k in VIDEO_KEYS if f"video.{k}" in merged},
        source=source,
    )
