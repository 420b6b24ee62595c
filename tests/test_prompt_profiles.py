"""Each prompt profile hands the model the tokens its authors' code hands it.

The references are built here from the public code's message structure (the released
RANKVIDEO inference and training, Qwen3-VL-Reranker) through the processor's own
`apply_chat_template`, not through rankvideo.prompt.
"""

import logging
import shutil

import pytest

from rankvideo.prompt import build_prompt
from rankvideo.scoring import VLMReranker
from rankvideo.video import VideoSettings, load_video

DEMO_VIDEO = VideoSettings(fps=2.0, max_frames=8, min_pixels=4096, max_pixels=4096)
QUERY = "Protestas en Santiago, Chile: a crowd {marching} at night"

RELEASE_SYSTEM = (
    "You are a helpful assistant specialized in video and text understanding. "
    "Given a text query and a video, your task is to determine if the video is relevant "
    "to the query. Respond with <answer>yes</answer> if the video is relevant, or "
    "<answer>no</answer> if it is not. "
)
TRAINED_SYSTEM = (
    "You are a helpful assistant specialized in video and text understanding. "
    "Given a text query and a video, determine if the video is relevant."
)
QWEN_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)
QWEN_INSTRUCTION = "Given a search query, retrieve relevant candidates that answer the query."


def text(value):
    return {"type": "text", "text": value}


def reference_text(processor, profile: str, query: str) -> str:
    """The prompt text as the authors' code renders it, up to the answer slot."""
    video = {"type": "video"}
    if profile == "rankvideo-release":
        user = [
            text(
                f"Query: {query}\nIs the video relevant to the query? "
                "Respond with <answer>yes</answer> or <answer>no</answer>."
            ),
            video,
        ]
        messages = [{"role": "system", "content": [text(RELEASE_SYSTEM)]}]
        messages.append({"role": "user", "content": user})
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if profile == "rankvideo-trained":  # a training conversation, cut after `<answer>`
        user = [video, text(f"Query: {query}\nIs the video relevant? Answer with yes or no.")]
        messages = [
            {"role": "system", "content": [text(TRAINED_SYSTEM)]},
            {"role": "user", "content": user},
            {"role": "assistant", "content": [text("<answer>yes</answer>")]},
        ]
        full = processor.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
        return full[: full.rindex("<answer>") + len("<answer>")]
    if profile == "qwen3-vl-reranker":
        user = [text("<Instruct>: " + QWEN_INSTRUCTION), text("<Query>:"), text(query)]
        user += [text("\n<Document>:"), video]
        messages = [{"role": "system", "content": [text(QWEN_SYSTEM)]}]
        messages.append({"role": "user", "content": user})
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    raise AssertionError(profile)


@pytest.fixture(scope="module")
def clip(demo_data):
    return sorted(demo_data["videos"].glob("*.mp4"))[0]


@pytest.mark.parametrize("profile", ["rankvideo-release", "rankvideo-trained", "qwen3-vl-reranker"])
def test_profile_text_equals_the_authors(tiny_vlm, clip, profile):
    """The prompt text equals the chat template's rendering of the authors' messages; the
    token ids (the video span's expansion included) are compared with the authors'
    pinned transformers in tests/test_reference_fidelity.py."""
    reranker = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile=profile)
    query = " ".join(QUERY.split())
    assert build_prompt(QUERY, profile) == reference_text(reranker.processor, profile, query)
    decoded = load_video(clip, reranker.video)
    ours = reranker.inputs([QUERY], [decoded])["input_ids"][0].tolist()
    tokenizer = reranker.tokenizer
    video_pad = tokenizer.convert_tokens_to_ids("<|video_pad|>")
    first_query_token = ours.index(tokenizer.encode(" Santiago", add_special_tokens=False)[0])
    video_first = ours.index(video_pad) < first_query_token
    assert video_first == (profile == "rankvideo-trained")
    # the slot read is the last position: after `<answer>`, else after the assistant header
    tail = "<answer>" if profile == "rankvideo-trained" else "<|im_start|>assistant\n"
    assert tokenizer.decode(ours[-len(tokenizer.encode(tail)) :]) == tail


def test_answer_tokens_of_each_profile(tiny_vlm):
    vocab_yes, vocab_no = 9693, 2152  # the Qwen vocabulary's "yes" and "no"
    exact = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="qwen3-vl-reranker")
    assert exact.yes_ids == [vocab_yes] and exact.no_ids == [vocab_no]
    decoded = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="rankvideo-release")
    ours = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="chat")
    tokenizer = decoded.tokenizer
    assert set(ours.yes_ids) <= set(decoded.yes_ids) and set(ours.no_ids) <= set(decoded.no_ids)
    for ids, word in ((decoded.yes_ids, "yes"), (decoded.no_ids, "no")):
        assert all(tokenizer.decode([i]).strip().lower() == word for i in ids)
    assert {"yes", " yes", "Yes", "YES", " Yes"} <= {tokenizer.decode([i]) for i in decoded.yes_ids}


@pytest.mark.parametrize(
    "hub_id, profile",
    [("hltcoe/RankVideo", "rankvideo-release"), ("Qwen/Qwen3-VL-Reranker-8B", "qwen3-vl-reranker")],
)
def test_a_folder_named_like_a_known_checkpoint_takes_its_profile(
    tiny_vlm, tmp_path, caplog, hub_id, profile
):
    folder = shutil.copytree(tiny_vlm, tmp_path / hub_id)
    assert VLMReranker(str(folder), video=DEMO_VIDEO).template == profile
    caplog.set_level(logging.INFO)
    assert VLMReranker(str(folder), video=DEMO_VIDEO, profile="chat").template == "chat"
    assert f"not its authors' '{profile}'" in caplog.text
    assert VLMReranker(str(tiny_vlm), video=DEMO_VIDEO).template == "chat"  # no profile


def authors_cut(ids, special, max_length):
    """Qwen3-VL-Reranker's truncation, restated from its code: the last 5 tokens stay,
    special tokens stay, other tokens are kept in order up to the budget."""
    head, tail = ids[:-5], ids[-5:]
    if len(head) <= max_length:
        return ids
    budget = max_length - sum(1 for t in head if t in special)
    kept = []
    for t in head:
        if t in special:
            kept.append(t)
        elif budget > 0:
            kept.append(t)
            budget -= 1
    return kept + tail


def test_long_inputs_are_cut_as_qwen3_vl_reranker_cuts_them(tiny_vlm, clip, monkeypatch):
    import dataclasses

    from rankvideo import prompt

    short = dataclasses.replace(prompt.PROFILES["qwen3-vl-reranker"], max_length=60)
    monkeypatch.setitem(prompt.PROFILES, "qwen3-vl-reranker", short)
    reranker = VLMReranker(str(tiny_vlm), video=DEMO_VIDEO, profile="qwen3-vl-reranker")
    decoded = load_video(clip, reranker.video)
    queries = ["a short query", QUERY + " and a much longer tail of words " * 3]
    batch = reranker.inputs(queries, [decoded, decoded])
    special = set(reranker.tokenizer.all_special_ids)
    monkeypatch.setitem(
        prompt.PROFILES, "qwen3-vl-reranker", dataclasses.replace(short, max_length=None)
    )
    for i, query in enumerate(queries):
        full = reranker.inputs([query], [decoded])["input_ids"][0].tolist()
        row = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        assert row == authors_cut(full, special, 60)
        assert row.count(reranker.tokenizer.convert_tokens_to_ids("<|video_pad|>")) == full.count(
            reranker.tokenizer.convert_tokens_to_ids("<|video_pad|>")
        )
    assert reranker.cut_inputs == 2
    (score,) = reranker.score_decoded(queries[:1], [decoded])
    assert score["logit_delta"] == score["logit_delta"]  # finite, from the cut input
