"""Stage 1, perception SFT: the base VLM learns to caption its videos.

The target is the caption wrapped in `<think>...</think>` (as the original
release does), then the end-of-turn token; the loss covers those assistant
tokens only. `python -m rankvideo.train_perception` takes the release's
arguments, or `--settings` (a JSON file, as the workflow writes it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import Trainer
from transformers.loss.loss_utils import ForCausalLMLoss

from rankvideo import formats
from rankvideo.captioner import caption_prompt
from rankvideo.models import video_inputs
from rankvideo.training import (
    model_for_stage,
    run_trainer,
    save_model,
    stage_main,
    training_arguments,
)
from rankvideo.video import FrameMemo, VideoSettings

log = logging.getLogger(__name__)

CAPTION_PROMPT = "Describe this video."

# The schema's defaults (tests/test_defaults.py): LoRA, as full training of a model of
# the paper's size does not fit one GPU
DEFAULTS = {
    "method": "lora",
    "lora": {
        "r": 16,
        "alpha": 32,
        "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    },
    "freeze_embeddings": False,
    "prompt": CAPTION_PROMPT,
    "learning_rate": 1e-5,
    "weight_decay": 0.0,
    "scheduler": "cosine",
    "warmup_steps": 0.03,
    "epochs": 1,
    "max_steps": -1,
    "batch_size": 1,
    "gradient_accumulation": 8,
    "activation_checkpointing": False,
    "max_grad_norm": 1.0,
    "log_every": 1,
    "save_every": 200,
    "threads": 1,
    "seed": 0,
    "video": {},
}


class CaptionCollator:
    """Batches of (video, caption) records with labels on the assistant tokens only."""

    def __init__(self, processor, video: VideoSettings, prompt: str):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.load = FrameMemo(video)
        self.prompt = caption_prompt(processor, prompt)

    def target(self, caption: str) -> str:
        return f"<think>\n{' '.join(caption.split())}\n</think>{self.tokenizer.eos_token}"

    def __call__(self, records: list[dict]) -> dict:
        videos = [self.load(r["videos"][0]) for r in records]
        targets = [self.target(r["caption"]) for r in records]
        batch = video_inputs(self.processor, [self.prompt + t for t in targets], videos, "cpu")
        labels = torch.full_like(batch["input_ids"], -100)
        for row, target in enumerate(targets):
            ids = self.tokenizer.encode(target, add_special_tokens=False)
            tail = batch["input_ids"][row, -len(ids) :]
            if tail.tolist() != ids:  # left padding: the target is the end of every row
                raise ValueError(f"target tokens of {records[row]['doc_id']} do not end the prompt")
            labels[row, -len(ids) :] = tail
        batch["labels"] = labels
        # only the positions that predict a target token need logits: with a vocabulary
        # of 151,936 the others were most of a step's work (caption_loss reads these)
        batch["logits_to_keep"] = int(labels.ne(-100).sum(dim=1).max()) + 1
        return dict(batch)


def caption_loss(outputs, labels, num_items_in_batch=None) -> torch.Tensor:
    """Cross-entropy of the target tokens, from the logits of the last positions only.

    The kept logits are the last `logits_to_keep` positions (the targets end every row,
    as padding is on the left), so the labels are cut to the same positions; the loss
    is the model's own causal-LM loss, shifted and normalised as it would be in full.
    """
    logits = outputs.logits
    return ForCausalLMLoss(
        logits,
        labels[:, -logits.shape[1] :],
        vocab_size=logits.shape[-1],
        num_items_in_batch=num_items_in_batch,
    )


def train_perception(settings: dict, callbacks=()) -> None:
    """Fine-tune `settings['model']` on the caption records; see DEFAULTS for the keys."""
    settings = {**DEFAULTS, **settings}
    records = [
        r for _, r in formats.read_jsonl(settings["train_data"], ("doc_id", "videos", "caption"))
    ]
    if not records:
        raise ValueError(f"{settings['train_data']}: no caption records to train on")
    model, processor, video = model_for_stage(settings)
    work_dir = Path(settings["work_dir"])
    trainer = Trainer(
        model=model,
        args=training_arguments(settings, work_dir),
        train_dataset=records,
        callbacks=list(callbacks),
        data_collator=CaptionCollator(processor, video, settings["prompt"]),
        compute_loss_func=caption_loss,
    )
    log.info("stage 1: %d caption records", len(records))
    run_trainer(trainer, work_dir)
    save_model(trainer, processor, settings["output_dir"], settings, settings["method"])


def main(argv=None):
    data_help = "caption records {doc_id, videos, caption} (JSON lines)"
    stage_main("Stage 1: perception SFT (captioning).", train_perception, data_help, argv)


if __name__ == "__main__":
    main()
