"""What both training stages share: model preparation, the Trainer, resume, saving.

Training runs on transformers' `Trainer` (which runs on accelerate): several
processes when started under `accelerate launch`, gloo on CPU, NCCL on GPUs.
Checkpoints go to a work folder outside the declared outputs, so a crashed or
stopped run resumes from its last checkpoint (only a run with the same settings and
inputs: checkpoints of other settings, data or starting model are dropped); the final
model is saved where
`from_pretrained` loads it, with the resolved settings next to it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from rankvideo import logs
from rankvideo.launch import claim_checkpoints

log = logging.getLogger(__name__)


def check_method(method: str) -> None:
    if method not in ("full", "lora", "qlora"):
        raise ValueError(f"training method {method!r}: use full, lora or qlora")
    if method == "qlora":
        if not torch.cuda.is_available():
            raise RuntimeError(
                "QLoRA needs a CUDA GPU (4-bit bitsandbytes kernels); use lora or full on CPU"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise RuntimeError("QLoRA needs the bitsandbytes package: pip install bitsandbytes")


def load_for_training(model_path: str, method: str):
    """(model, processor) of a VLM ready to train with `method`.

    `model_path` may be a PEFT adapter folder (a QLoRA stage 1's output): its base
    is loaded, and `prepare(..., adapter=model_path)` continues that adapter.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from rankvideo.models import adapter_base

    check_method(method)
    processor = AutoProcessor.from_pretrained(model_path)
    processor.tokenizer.padding_side = "left"
    kwargs = {"dtype": torch.bfloat16 if torch.cuda.is_available() else torch.float32}
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    base = adapter_base(model_path)
    model = AutoModelForImageTextToText.from_pretrained(base or model_path, **kwargs)
    if base:
        log.info("starting from the adapter %s on its base %s", model_path, base)
    return model, processor


def prepare(model, method: str, lora: dict, freeze_embeddings: bool = False, adapter=None):
    """Wrap the model for LoRA/QLoRA, or freeze the token embedding for full training.

    With `adapter` (the folder of an adapter whose base `model` is), training continues
    that adapter (LoRA/QLoRA; its own rank and targets) or merges it first (full).
    """
    if adapter and method == "full":
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        model.requires_grad_(True)  # peft froze the base while the adapter was attached
        adapter = None
    if method in ("lora", "qlora"):
        from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

        if method == "qlora":
            model = prepare_model_for_kbit_training(model)
        if adapter:
            model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
            return _report_trainable(model, method)
        config = LoraConfig(
            r=lora["r"],
            lora_alpha=lora["alpha"],
            lora_dropout=lora["dropout"],
            target_modules=list(lora["target_modules"]),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
    elif freeze_embeddings:
        model.get_input_embeddings().requires_grad_(False)
    return _report_trainable(model, method)


def _report_trainable(model, method: str):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info(
        "%s training: %.2fM of %.2fM parameters trainable", method, trainable / 1e6, total / 1e6
    )
    return model


def model_for_stage(settings: dict):
    """(model ready to train, processor, video settings) for a stage's settings."""
    from transformers import set_seed

    from rankvideo.models import adapter_base
    from rankvideo.video import for_processor

    model, processor = load_for_training(settings["model"], settings["method"])
    set_seed(settings["seed"])  # LoRA's initial weights come from the global generator
    adapter = settings["model"] if adapter_base(settings["model"]) else None
    model = prepare(
        model, settings["method"], settings["lora"], settings["freeze_embeddings"], adapter
    )
    return model, processor, for_processor(settings["video"], processor)


def training_arguments(settings: dict, work_dir) -> TrainingArguments:
    cpu = not torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(Path(work_dir) / "checkpoints"),
        per_device_train_batch_size=settings["batch_size"],
        gradient_accumulation_steps=settings["gradient_accumulation"],
        activation_checkpointing=settings["activation_checkpointing"],
        # non-reentrant: gradients reach LoRA adapters even when a block's inputs need none
        activation_checkpointing_kwargs={"use_reentrant": False},
        learning_rate=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
        lr_scheduler_type=settings["scheduler"],
        warmup_steps=settings["warmup_steps"],
        num_train_epochs=settings["epochs"],
        max_steps=settings["max_steps"],
        max_grad_norm=settings["max_grad_norm"],
        logging_steps=settings["log_every"],
        save_strategy="steps",
        save_steps=settings["save_every"],
        save_total_limit=2,
        seed=settings["seed"],
        data_seed=settings["seed"],
        bf16=not cpu,
        use_cpu=cpu,
        ddp_backend="gloo" if cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def last_whole_checkpoint(work_dir) -> str | None:
    """The newest checkpoint that was saved to the end (it has trainer_state.json, which
    transformers writes last); one cut short by a kill during its save is skipped."""
    folder = Path(work_dir) / "checkpoints"
    steps = sorted(
        (int(p.name.split("-")[1]), p)
        for p in folder.glob("checkpoint-*")
        if p.is_dir() and p.name.split("-")[1].isdigit()
    )
    for _, checkpoint in reversed(steps):
        if (checkpoint / "trainer_state.json").is_file():
            return str(checkpoint)
        log.warning("%s was not saved to the end (no trainer_state.json): skipped", checkpoint)
    return None


def run_trainer(trainer: Trainer, work_dir) -> None:
    """Train, resuming from the last whole checkpoint in `work_dir` when there is one."""
    last = last_whole_checkpoint(work_dir)
    if last:
        log.info("resuming from %s", last)
    trainer.train(resume_from_checkpoint=last)
    from rankvideo.video import decode_summary

    log.info("process %d: %s", trainer.args.process_index, decode_summary())


def write_log(trainer: Trainer, path) -> None:
    """The per-step log (loss terms, learning rate, grad norm) as TSV, resumed steps included."""
    rows = [
        {"step": entry["step"], **{k: v for k, v in entry.items() if k != "step"}}
        for entry in trainer.state.log_history
        if "loss" in entry
    ]
    # a fixed order: a resumed run reads its earlier steps back with their keys sorted
    seen = {k for row in rows for k in row} - {"step", "loss"}
    columns = ["step", "loss", *sorted(seen)] if rows else []
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def save_model(trainer: Trainer, processor, output_dir, settings: dict, method: str) -> None:
    """Merged weights (full, lora) or the adapter (qlora) + processor + resolved settings + log."""
    if not trainer.is_world_process_zero():
        return
    write_log(trainer, settings["log"])
    model = trainer.model
    if method == "lora":
        model = model.merge_and_unload()
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    (output_dir / "training_config.json").write_text(json.dumps(settings, indent=2, default=str))
    log.info("saved %s", output_dir)


def stage_main(description: str, train, data_help: str, argv=None) -> None:
    """The command line of a training stage: the release's arguments, or `--settings`."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--settings", help="JSON settings (as the workflow writes them)")
    parser.add_argument("--model", help="the model to start from: hub id or folder")
    parser.add_argument("--train-data", help=data_help)
    parser.add_argument("--eval-data", help="accepted for compatibility; not used yet")
    parser.add_argument("--output-dir", help="gets model/, work/ (checkpoints) and train_log.tsv")
    args = parser.parse_args(argv)
    logs.for_command_line()
    if args.settings:
        settings = json.loads(Path(args.settings).read_text())
    else:
        if not (args.model and args.train_data and args.output_dir):
            parser.error("give --settings, or --model, --train-data and --output-dir")
        out = Path(args.output_dir)
        settings = {
            "model": args.model,
            "train_data": args.train_data,
            "output_dir": str(out / "model"),
            "work_dir": str(out / "work"),
            "log": str(out / "train_log.tsv"),
        }
    if settings.get("threads"):
        torch.set_num_threads(settings["threads"])
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # several processes: run_stage claimed
        claim_checkpoints(settings)
    train(settings)
