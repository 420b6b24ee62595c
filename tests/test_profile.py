"""A model is scored as it was trained: the profile in its training_config.json."""

import json

import pytest

from rankvideo.profile import ProfileConflict, profile_for_training, resolve


@pytest.fixture
def trained(tmp_path):
    """A model folder whose training_config.json carries a scoring profile."""
    scoring = profile_for_training(
        "short", ["true", "false"], {"fps": 2.0, "max_frames": 8, "max_pixels": 4096, "cache": "x"}
    )
    (tmp_path / "training_config.json").write_text(json.dumps({"seed": 0, "scoring": scoring}))
    return tmp_path


def test_unset_settings_take_the_models_own(trained):
    profile = resolve(trained)
    assert profile.template == "short" and profile.answer_words == ("true", "false")
    assert profile.video == {"fps": 2.0, "max_frames": 8, "max_pixels": 4096}
    assert profile.source.endswith("training_config.json")


def test_agreeing_explicit_settings_are_fine(trained):
    profile = resolve(trained, "short", ("true", "false"), {"fps": 2, "min_frames": 4})
    assert profile.video == {"fps": 2.0, "max_frames": 8, "max_pixels": 4096, "min_frames": 4}


@pytest.mark.parametrize(
    "explicit, named",
    [
        ({"template": "chat"}, "template 'short' \\(trained\\) vs 'chat' \\(asked for\\)"),
        ({"answer_words": ("yes", "no")}, "answer_words \\('true', 'false'\\) \\(trained\\)"),
        ({"video": {"max_frames": 32}}, "video.max_frames 8 \\(trained\\) vs 32"),
    ],
)
def test_a_conflicting_setting_names_both_values(trained, explicit, named):
    with pytest.raises(ProfileConflict, match=named) as error:
        resolve(trained, **explicit)
    assert str(trained) in str(error.value)


def test_models_without_a_profile_use_the_settings_or_defaults(tmp_path):
    (tmp_path / "training_config.json").write_text('{"prompt": "Describe this video."}')
    assert resolve(tmp_path).as_dict() == {
        "template": "chat",
        "answer_words": ["yes", "no"],
        "video": {},
    }
    assert resolve("Qwen/Qwen3-VL-8B-Instruct", "short").template == "short"


def test_an_unreadable_training_config_is_named(tmp_path):
    (tmp_path / "training_config.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="training_config.json: not a JSON object"):
        resolve(tmp_path)
