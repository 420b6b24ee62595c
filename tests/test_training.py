"""The two training stages on the tiny model: masking, learning, resume, LoRA, processes."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from rankvideo import formats
from rankvideo.launch import claim_checkpoints, run_stage
from rankvideo.losses import LossWeights
from rankvideo.scoring import answer_logprobs
from rankvideo.train_perception import CaptionCollator, caption_loss, train_perception
from rankvideo.train_reranker import GroupCollator, RerankerTrainer, make_groups, train_reranker
from rankvideo.training import check_method, load_for_training, training_arguments
from rankvideo.video import VideoSettings

VIDEO = {"fps": 2.0, "max_frames": 8, "min_pixels": 4096, "max_pixels": 4096}
FAST = {"batch_size": 2, "gradient_accumulation": 1, "warmup_steps": 0, "save_every": 3, "seed": 0}
STEP = {"learning_rate": 1e-3, "weight_decay": 0.0, "scheduler": "constant", "epochs": 1}
STEP |= {"max_steps": 1, "max_grad_norm": 1.0, "log_every": 1, "activation_checkpointing": False}


def run_files(model, data, folder) -> dict:
    """The settings that name a stage's input and outputs, all under `folder`."""
    return {
        "model": str(model),
        "train_data": str(data),
        "output_dir": str(folder / "model"),
        "work_dir": str(folder / "work"),
        "log": str(folder / "log.tsv"),
        "video": VIDEO,
    }


@pytest.fixture(scope="module")
def records(demo_data):
    """The demo's released training records, pointing at the extracted videos."""
    rows = formats.read_training_records(demo_data["data"] / "training_data.json")
    for r in rows:
        r["videos"] = [str(demo_data["data"] / r["videos"][0])]
    return rows


@pytest.fixture(scope="module")
def caption_file(records, tmp_path_factory):
    path = tmp_path_factory.mktemp("stage1") / "captions.jsonl"
    seen = {r["doc_id"]: r for r in records}
    rows = [
        {"doc_id": d, "videos": r["videos"], "caption": r["evidence"]["caption"]}
        for d, r in seen.items()
    ]
    formats.write_jsonl(path, rows[:16])
    return path


@pytest.fixture(scope="module")
def ranking_file(records, tmp_path_factory):
    path = tmp_path_factory.mktemp("stage2") / "ranking.jsonl"
    queries = sorted({r["query_id"] for r in records})[:3]
    formats.write_jsonl(path, [r for r in records if r["query_id"] in queries])
    return path


def test_labels_cover_only_the_assistant_tokens(tiny_vlm, caption_file):
    _, processor = load_for_training(str(tiny_vlm), "full")
    collator = CaptionCollator(processor, VideoSettings(**VIDEO), "Describe this video.")
    rows = [r for _, r in formats.read_jsonl(caption_file)][:3]
    batch = collator(rows)
    tokenizer = processor.tokenizer
    for i, row in enumerate(rows):
        labelled = batch["labels"][i][batch["labels"][i] != -100].tolist()
        target = f"<think>\n{row['caption']}\n</think><|im_end|>"
        assert labelled == tokenizer.encode(target, add_special_tokens=False)
        assert tokenizer.decode(labelled).startswith("<think>")
        # the prompt, the video tokens and the padding carry no label
        video_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
        assert video_id not in labelled and (batch["input_ids"][i] == video_id).any()
        assert (batch["labels"][i][batch["attention_mask"][i] == 0] == -100).all()


def test_groups_are_counted(records):
    rows = [dict(r) for r in records if r["query_id"] in {"q001", "q003"}]
    for r in rows:
        if r["query_id"] == "q003":
            r["true_label"] = 0  # a query without any positive
    groups, report = make_groups(rows, num_negatives=3, seed=0)
    assert report["without_positive"] == 1 and report["queries"] == 2
    positives = sum(r["true_label"] for r in rows if r["query_id"] == "q001")
    assert report["groups"] == len(groups) == positives
    assert all(g["pairs"][0]["true_label"] == 1 for g in groups)
    assert all(p["true_label"] == 0 for g in groups for p in g["pairs"][1:])
    again, _ = make_groups(rows, num_negatives=3, seed=0)
    assert [[p["doc_id"] for p in g["pairs"]] for g in groups] == [
        [p["doc_id"] for p in g["pairs"]] for g in again
    ]


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tiny_vlm, ranking_file, tmp_path):
    model, processor = load_for_training(str(tiny_vlm), "full")
    groups, _ = make_groups(formats.read_training_records(ranking_file), 3, seed=0)
    batch = GroupCollator(processor, VideoSettings(**VIDEO), "short")(groups[:2])
    settings = {"learning_rate": 1e-3, "weight_decay": 0.0, "scheduler": "constant", "epochs": 1}
    settings |= {
        "max_steps": 1,
        "max_grad_norm": 1.0,
        "log_every": 1,
        "activation_checkpointing": False,
    } | FAST
    trainer = RerankerTrainer(
        model=model,
        args=training_arguments(settings, tmp_path),
        yes_ids=[9693],
        no_ids=[2152],
        weights=LossWeights(tau_rank=1.0, distill=0.0),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = trainer.compute_loss(model, dict(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1


def test_caption_loss_from_the_kept_logits_is_the_full_loss(tiny_vlm, caption_file):
    """Stage 1 computes logits only where a target token is predicted: the loss and its
    gradients are those of the model's own loss over every position."""
    model, processor = load_for_training(str(tiny_vlm), "full")
    collator = CaptionCollator(processor, VideoSettings(**VIDEO), "Describe this video.")
    batch = collator([r for _, r in formats.read_jsonl(caption_file)][:4])
    kept = batch.pop("logits_to_keep")
    assert kept < batch["input_ids"].shape[1] // 2  # most positions need no logits
    labels = batch.pop("labels")
    full = model(**batch, labels=labels).loss
    full_grad = torch.autograd.grad(full, model.get_input_embeddings().weight)[0]
    ours = caption_loss(model(**batch, logits_to_keep=kept), labels)
    ours_grad = torch.autograd.grad(ours, model.get_input_embeddings().weight)[0]
    assert abs(ours.item() - full.item()) < 1e-5
    assert torch.allclose(ours_grad, full_grad, atol=1e-6)
    with pytest.raises(AssertionError):  # one position fewer loses a target token
        assert abs(caption_loss(model(**batch, logits_to_keep=kept - 1), labels) - full) < 1e-5


def test_stage_two_scores_from_the_answer_rows_equal_the_full_scores(
    tiny_vlm, ranking_file, tmp_path
):
    model, processor = load_for_training(str(tiny_vlm), "full")
    groups, _ = make_groups(formats.read_training_records(ranking_file), 3, seed=0)
    batch = GroupCollator(processor, VideoSettings(**VIDEO), "chat")(groups[:2])
    for key in ("group_labels", "teacher_p_yes"):
        batch.pop(key)
    trainer = RerankerTrainer(
        model=model,
        args=training_arguments(STEP | FAST, tmp_path),
        yes_ids=[9693, 9454],
        no_ids=[2152, 2753],
        weights=LossWeights(),
    )
    scores = trainer.answer_scores(model, dict(batch))  # checks itself on its first call
    assert trainer._checked and scores.shape == (8,) and scores.requires_grad
    with torch.no_grad():
        logits = model(**batch, logits_to_keep=1).logits[:, -1]
    yes, no = answer_logprobs(logits, [9693, 9454], [2152, 2753])
    assert torch.allclose(scores.detach(), yes - no, atol=1e-5)


def test_a_training_job_shares_its_cores_among_its_processes(tmp_path, monkeypatch):
    import rankvideo.launch

    started = {}
    monkeypatch.setattr(
        rankvideo.launch, "launch", lambda module, path, processes, threads: started.update(
            processes=processes, threads=threads
        )
    )  # fmt: skip
    monkeypatch.setattr(rankvideo.launch, "claim_checkpoints", lambda settings: None)
    settings = {"work_dir": str(tmp_path / "work")}
    run_stage("rankvideo.train_reranker", settings, processes=1, cores=2)
    assert started == {"processes": 1, "threads": 2}
    run_stage("rankvideo.train_reranker", settings, processes=2, cores=5)
    assert started == {"processes": 2, "threads": 2}
    written = json.loads((tmp_path / "work/settings.json").read_text())
    assert written["threads"] == 2


def test_frames_kept_in_memory_are_the_decoded_frames_up_to_a_budget(demo_data):
    from rankvideo.video import DECODES, FrameMemo, load_video

    paths = sorted(demo_data["videos"].glob("*.mp4"))[:3]
    settings = VideoSettings(**VIDEO)
    one = load_video(paths[0], settings)[0]
    memo = FrameMemo(settings, max_bytes=one.numel() * one.element_size() * 2)
    first = [memo(p) for p in paths]
    before = dict(DECODES)
    again = [memo(p) for p in paths]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert again[0][0] is first[0][0] and again[1][0] is first[1][0]  # kept
    assert again[2][0] is not first[2][0]  # over the budget: read again
    assert sum(DECODES.values()) - sum(before.values()) == 1


class Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 4:
            raise KeyboardInterrupt("simulated crash")


def test_resume_reaches_the_uninterrupted_weights(tiny_vlm, caption_file, tmp_path):
    def settings(name):
        return {
            **run_files(tiny_vlm, caption_file, tmp_path / name),
            "method": "full",  # every weight is compared after the resume
            "learning_rate": 3e-3,
            "max_steps": 6,
        } | FAST

    train_perception(settings("straight"))
    with pytest.raises(KeyboardInterrupt):
        train_perception(settings("crashed"), callbacks=[Crash()])
    assert not (tmp_path / "crashed/model").exists()
    train_perception(settings("crashed"))  # resumes from checkpoint-3
    a = load_file(tmp_path / "straight/model/model.safetensors")
    b = load_file(tmp_path / "crashed/model/model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    base = load_file(tiny_vlm / "model.safetensors")
    assert any(not torch.equal(a[n], base[n]) for n in base)
    log = (tmp_path / "crashed/log.tsv").read_text().splitlines()
    assert len(log) == 1 + 6 and log[0].startswith("step\t")
    assert (
        json.loads((tmp_path / "straight/model/training_config.json").read_text())["max_steps"] == 6
    )


def test_lora_two_processes_save_a_loadable_model(tiny_vlm, ranking_file, tmp_path):
    from transformers import AutoModelForImageTextToText

    settings = {
        **run_files(tiny_vlm, ranking_file, tmp_path),
        "method": "lora",
        "num_negatives": 3,
        "template": "short",
        "max_steps": 3,
        "losses": {"distill": 0.0},
    } | FAST
    run_stage("rankvideo.train_reranker", settings, processes=2)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "model")
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"  # LoRA merged
    rows = (tmp_path / "log.tsv").read_text().splitlines()
    assert len(rows) == 1 + 3 and "listwise" in rows[0] and "pointwise" in rows[0]
    assert "distill" not in rows[0]


def test_qlora_needs_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="QLoRA needs a CUDA GPU"):
        check_method("qlora")
    with pytest.raises(ValueError, match="use full, lora or qlora"):
        check_method("adapters")


def test_stage_two_entry_point(tiny_vlm, ranking_file, tmp_path):
    report = train_reranker(
        {
            **run_files(tiny_vlm, ranking_file, tmp_path),
            "num_negatives": 3,
            "max_steps": 2,
        }
        | FAST
    )
    assert report["groups"] > 0 and (tmp_path / "model" / "model.safetensors").exists()


def test_checkpoints_of_other_settings_are_not_resumed(tmp_path, caplog):
    data, model = tmp_path / "data.jsonl", tmp_path / "model"
    data.write_text('{"doc_id": "v1"}\n')
    model.mkdir()
    (model / "config.json").write_text("{}")
    settings = {
        "model": str(model),
        "train_data": str(data),
        "work_dir": str(tmp_path / "work"),
        "learning_rate": 1e-3,
    }
    checkpoint = tmp_path / "work/checkpoints/checkpoint-100"
    claim_checkpoints(settings)
    checkpoint.mkdir()
    claim_checkpoints(settings)  # the same settings and inputs: a rerun resumes
    assert checkpoint.is_dir()
    claim_checkpoints({**settings, "learning_rate": 3e-3, "seed": 1})
    assert not checkpoint.exists()
    assert "learning_rate, seed differ" in caplog.text
    # checkpoints without a record (an older run) are not trusted either
    (tmp_path / "work/checkpoints/settings.json").unlink()
    checkpoint.mkdir()
    claim_checkpoints(settings)
    assert not checkpoint.exists() and "no record of them" in caplog.text
    # rebuilt inputs at the same paths: new training data, a new starting model
    for rebuild, what in (
        (lambda: data.write_text('{"doc_id": "v2"}\n'), "inputs.train_data"),
        (
            lambda: (model / "config.json").write_text('{"rebuilt": 1}'),
            "inputs.model.content, inputs.model.files",
        ),
    ):
        checkpoint.mkdir()
        rebuild()
        claim_checkpoints(settings)
        assert not checkpoint.exists() and f"({what} differ)" in caplog.text


@pytest.fixture(scope="module")
def adapter_folder(tiny_vlm, tmp_path_factory):
    """What QLoRA training saves: a LoRA adapter (non-zero, so it changes the model) and
    the processor, with no full config of its own."""
    from peft import LoraConfig, get_peft_model

    model, processor = load_for_training(str(tiny_vlm), "full")
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(model, config)
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    assert not (folder / "config.json").exists()
    merged = model.merge_and_unload()
    return folder, {k: v.detach().clone() for k, v in merged.state_dict().items()}


def test_an_adapter_folder_loads_for_scoring_merged_into_its_base(adapter_folder):
    from rankvideo.models import load_vlm

    folder, merged = adapter_folder
    model, processor, _ = load_vlm(str(folder), device="cpu")
    state = model.state_dict()
    assert set(state) == set(merged)
    assert all(torch.equal(state[k], merged[k]) for k in merged)
    assert processor.tokenizer.padding_side == "left"


@pytest.mark.parametrize("method", ["lora", "full"])
def test_training_from_an_adapter_continues_it(adapter_folder, method):
    """LoRA continues the saved adapter (its own weights, trainable); full merges it first."""
    from rankvideo.training import prepare

    folder, merged = adapter_folder
    model, _ = load_for_training(str(folder), method)
    lora = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj"]}
    model = prepare(model, method, lora, adapter=str(folder))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if method == "lora":
        saved = load_file(folder / "adapter_model.safetensors")
        assert trainable and all("lora_" in n for n in trainable)
        assert len(trainable) == len(saved)  # the adapter's own rank and targets, not `lora`
        assert any("v_proj" in n for n in trainable)
        state = model.merge_and_unload().state_dict()
    else:
        assert len(trainable) == len(list(model.parameters()))
        state = model.state_dict()
    assert all(torch.equal(state[k], merged[k]) for k in merged)


class CheckpointingSeen(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.seen = model.is_activation_checkpointing


def test_activation_checkpointing_gives_the_same_gradients(tiny_vlm, ranking_file, tmp_path):
    """The setting reaches the model, and recomputing activations changes memory, not
    results: the first step's loss and gradient norm are those of keeping them (LoRA:
    the gradients reach the adapters through the checkpoints). Only the first step is
    compared: Adam's first update divides by |gradient|, which turns rounding noise in
    near-zero gradients into full-size steps. The two runs share one process, so this
    also checks that LoRA's initial weights come from the run's seed."""
    import csv

    runs = {}
    for on in (False, True):
        out, seen = tmp_path / str(on), CheckpointingSeen()
        settings = {
            **run_files(tiny_vlm, ranking_file, out),
            "method": "lora",
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj"]},
            "num_negatives": 3,
            "max_steps": 2,
            "activation_checkpointing": on,
        }
        train_reranker(settings | FAST, callbacks=[seen])
        with open(out / "log.tsv") as f:
            first = next(csv.DictReader(f, delimiter="\t"))
        runs[on] = seen.seen, float(first["loss"]), float(first["grad_norm"])
    assert runs[False][0] is False and runs[True][0] is True
    assert runs[True][1] == pytest.approx(runs[False][1], rel=1e-6)
    assert runs[True][2] == pytest.approx(runs[False][2], rel=1e-4)
    assert runs[False][2] > 0


def test_a_trained_reranker_is_scored_as_it_was_trained(
    tiny_vlm, ranking_file, demo_data, tmp_path
):
    """Answer words, template and frames of stage 2 travel with the model to the scorer."""
    from rankvideo.profile import ProfileConflict
    from rankvideo.rerank import load_reranker
    from rankvideo.scoring import answer_token_ids

    settings = {
        **run_files(tiny_vlm, ranking_file, tmp_path),
        "num_negatives": 3,
        "max_steps": 1,
        "template": "short",
        "answer_words": ["true", "false"],
        "video": {**VIDEO, "max_frames": 6},
    }
    train_reranker(settings | FAST)
    model = tmp_path / "model"
    saved = json.loads((model / "training_config.json").read_text())["scoring"]
    assert saved["template"] == "short" and saved["answer_words"] == ["true", "false"]
    assert saved["video"]["max_frames"] == 6
    # the workflow's rankvideo system names only the reader: the rest is the model's
    reranker = load_reranker(str(model), {"backend": "decord"}, None, batch_size=4)
    assert reranker.template == "short" and reranker.video.max_frames == 6
    assert reranker.yes_ids == answer_token_ids(reranker.tokenizer, "true")
    assert reranker.no_ids == answer_token_ids(reranker.tokenizer, "false")
    clip = str(sorted(demo_data["videos"].glob("*.mp4"))[0])
    (by_profile,) = reranker.score_batch(["a red circle moving left"], [clip])
    explicit = load_reranker(
        str(model), {**VIDEO, "max_frames": 6}, "short", 4, answer_words=("true", "false")
    )
    (by_hand,) = explicit.score_batch(["a red circle moving left"], [clip])
    assert by_profile == by_hand
    with pytest.raises(ProfileConflict, match="answer_words .*'true', 'false'.* vs .*'yes'"):
        load_reranker(str(model), {"backend": "decord"}, None, 4, answer_words=("yes", "no"))
    with pytest.raises(ProfileConflict, match="video.max_frames 6 \\(trained\\) vs 8"):
        load_reranker(str(model), VIDEO, "short", 4)


def test_a_loss_that_turns_nan_stops_training(tiny_vlm, ranking_file, tmp_path):
    from rankvideo.losses import LossWeights

    model, processor = load_for_training(str(tiny_vlm), "full")
    groups, _ = make_groups(formats.read_training_records(ranking_file), 3, seed=0)
    batch = GroupCollator(processor, VideoSettings(**VIDEO), "short")(groups[:1])
    batch["teacher_p_yes"][:] = float("nan")
    trainer = RerankerTrainer(
        model=model,
        args=training_arguments(
            {"learning_rate": 1e-3, "weight_decay": 0.0, "scheduler": "constant", "epochs": 1}
            | {"max_steps": 1, "max_grad_norm": 1.0, "log_every": 1}
            | {"activation_checkpointing": False}
            | FAST,
            tmp_path,
        ),
        yes_ids=[9693],
        no_ids=[2152],
        weights=LossWeights(),
    )
    with torch.no_grad():
        model.lm_head.weight[9693] = float("nan")  # a broken model: every score is NaN
    with pytest.raises(FloatingPointError, match="step 0: the loss is not finite"):
        trainer.compute_loss(model, dict(batch))


def test_a_checkpoint_cut_short_is_not_resumed(tmp_path, caplog):
    from rankvideo.training import last_whole_checkpoint

    checkpoints = tmp_path / "checkpoints"
    assert last_whole_checkpoint(tmp_path) is None
    for step in (5, 10, 15):
        (checkpoints / f"checkpoint-{step}").mkdir(parents=True)
    for step in (5, 10):  # checkpoint-15 was being saved when the job was killed
        (checkpoints / f"checkpoint-{step}/trainer_state.json").write_text("{}")
    assert last_whole_checkpoint(tmp_path) == str(checkpoints / "checkpoint-10")
    assert "checkpoint-15 was not saved to the end" in caplog.text


def _fit_fixed_batch(tiny_vlm, groups, weights, tmp_path, steps=15):
    """The student after `steps` optimiser steps on one fixed batch of `groups`."""
    torch.manual_seed(0)
    model, processor = load_for_training(str(tiny_vlm), "full")
    collate = GroupCollator(processor, VideoSettings(**VIDEO), "short")
    trainer = RerankerTrainer(
        model=model,
        args=training_arguments(STEP | FAST, tmp_path),
        yes_ids=[9693],
        no_ids=[2152],
        weights=weights,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = trainer.compute_loss(model, collate(groups))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return trainer, model, collate


def _scores(trainer, model, collate, groups) -> torch.Tensor:
    batch = collate(groups)
    shape = batch.pop("group_labels").shape
    batch.pop("teacher_p_yes")
    with torch.no_grad():
        return trainer.answer_scores(model, batch).view(shape)


def _rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.flatten().argsort().argsort().float(), b.flatten().argsort().argsort().float()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


@pytest.mark.parametrize("inverted", [False, True])
def test_distillation_follows_the_teacher_it_is_given(tiny_vlm, records, tmp_path, inverted):
    """The distillation link: a student trained on the teacher's p_yes alone orders the
    pairs as the teacher does, and as the inverted teacher does when p_yes is inverted
    (a sign error or a swapped answer word would show as the wrong sign here)."""
    groups, _ = make_groups(records, 3, seed=0)
    groups = groups[:2]
    pairs = [p for g in groups for p in g["pairs"]]
    teacher = torch.linspace(0.05, 0.95, len(pairs))[torch.randperm(len(pairs))]
    given = 1 - teacher if inverted else teacher
    taught = [
        {**g, "pairs": [{**p, "teacher_p_yes": float(given[i * 4 + j])}
                        for j, p in enumerate(g["pairs"])]}
        for i, g in enumerate(groups)
    ]  # fmt: skip
    assert len(pairs) == 8
    weights = LossWeights(listwise=0.0, distill=5.0, tau_distill=1.0, pointwise=0.0)
    trainer, model, collate = _fit_fixed_batch(tiny_vlm, taught, weights, tmp_path)
    follows = _rank_correlation(_scores(trainer, model, collate, groups), teacher)
    assert (follows < -0.6) if inverted else (follows > 0.6), follows


def test_records_joined_to_other_videos_teach_the_wrong_order(tiny_vlm, records, tmp_path):
    """The training records' link to their videos: trained on records whose videos were
    moved to other records, the student puts the positives of the true records below
    their negatives; trained on the true records, above."""
    groups, _ = make_groups(records, 3, seed=0)
    groups = groups[:2]
    videos = [p["videos"] for g in groups for p in g["pairs"]]
    moved = videos[1:] + videos[:1]  # each pair gets the next pair's video
    shuffled = [
        {**g, "pairs": [{**p, "videos": moved[i * 4 + j]} for j, p in enumerate(g["pairs"])]}
        for i, g in enumerate(groups)
    ]
    weights = LossWeights(tau_rank=1.0, distill=0.0, pointwise=0.0)
    gaps = {}
    for name, train_on in (("true", groups), ("shuffled", shuffled)):
        trainer, model, collate = _fit_fixed_batch(tiny_vlm, train_on, weights, tmp_path / name)
        scores = _scores(trainer, model, collate, groups)
        gaps[name] = float((scores[:, 0] - scores[:, 1:].max(dim=1).values).mean())
    assert gaps["true"] > 0 > gaps["shuffled"], gaps
