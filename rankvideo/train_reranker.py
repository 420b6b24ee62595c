"""Stage 2, reranker training: the yes/no score learns to rank a query's videos.

Batches group one query: one positive and `num_negatives` negatives (the
negatives come from the training records, i.e. the first stage's hard ones).
The score is `log P(yes) - log P(no)` at the answer slot of the same prompt as
inference; the loss is `rankvideo.losses.reranker_loss`. A query without both
a positive and a negative is counted and left out. `python -m
rankvideo.train_reranker` takes the release's arguments or `--settings`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Trainer

from rankvideo import formats
from rankvideo.losses import LossWeights, reranker_loss
from rankvideo.models import video_inputs
from rankvideo.profile import profile_for_training
from rankvideo.prompt import build_prompt, get_profile
from rankvideo.scoring import answer_ids, answer_logprobs, delta_from_answer_rows
from rankvideo.train_perception import DEFAULTS as STAGE1_DEFAULTS
from rankvideo.training import (
    model_for_stage,
    run_trainer,
    save_model,
    stage_main,
    training_arguments,
)
from rankvideo.video import FrameMemo, VideoSettings

log = logging.getLogger(__name__)

DEFAULTS = {
    **{k: v for k, v in STAGE1_DEFAULTS.items() if k != "prompt"},
    "num_negatives": 7,
    "template": "chat",
    "answer_words": ["yes", "no"],
    "losses": {},
}


def make_groups(records: list[dict], num_negatives: int, seed: int) -> tuple[list[dict], dict]:
    """One group per positive: the positive first, then `num_negatives` negatives of its query.

    Negatives are drawn without replacement when the query has enough, else with
    replacement (counted). Queries lacking a positive or a negative are counted.
    """
    by_query = defaultdict(lambda: ([], []))
    for r in records:
        by_query[r["query_id"]][0 if r["true_label"] == 1 else 1].append(r)
    groups, report = [], {"queries": len(by_query), "without_positive": 0, "without_negative": 0}
    report["groups_with_repeated_negatives"] = 0
    for qid in sorted(by_query):
        positives, negatives = by_query[qid]
        if not positives:
            report["without_positive"] += 1
            continue
        if not negatives:
            report["without_negative"] += 1
            continue
        rng = np.random.default_rng([seed, zlib.crc32(qid.encode())])
        for positive in positives:
            repeat = len(negatives) < num_negatives
            report["groups_with_repeated_negatives"] += repeat
            picks = rng.choice(len(negatives), size=num_negatives, replace=repeat)
            groups.append({"query_id": qid, "pairs": [positive, *(negatives[i] for i in picks)]})
    report["groups"] = len(groups)
    return groups, report


class GroupCollator:
    """Flattens groups into pairs, prompts them as inference does, keeps the group structure."""

    def __init__(self, processor, video: VideoSettings, template: str):
        self.processor = processor
        self.load = FrameMemo(video)
        self.template = template

    def __call__(self, groups: list[dict]) -> dict:
        pairs = [p for g in groups for p in g["pairs"]]
        texts = [build_prompt(p["query"], self.template) for p in pairs]
        videos = [self.load(p["videos"][0]) for p in pairs]
        batch = dict(video_inputs(self.processor, texts, videos, "cpu"))
        shape = (len(groups), len(groups[0]["pairs"]))
        batch["group_labels"] = torch.tensor([float(p["true_label"]) for p in pairs]).view(shape)
        teacher = [
            math.nan if p.get("teacher_p_yes") is None else p["teacher_p_yes"] for p in pairs
        ]
        batch["teacher_p_yes"] = torch.tensor(teacher).view(shape)
        return batch


class RerankerTrainer(Trainer):
    """Trainer whose loss is the stage-2 loss over the yes/no scores of each group."""

    def __init__(self, *args, yes_ids, no_ids, weights: LossWeights, **kwargs):
        super().__init__(*args, **kwargs)
        self.yes_ids, self.no_ids, self.weights = list(yes_ids), list(no_ids), weights
        self._terms = defaultdict(list)
        self._checked = False

    def answer_scores(self, model, inputs) -> torch.Tensor:
        """The score of each pair from the output layer's yes and no rows only.

        The other 151,936 logits cancel out of the score (`delta_from_answer_rows`), and
        computing them was a third of a step's work. The model runs with no logits kept
        and returns its last hidden states (after the final norm: what its output layer
        reads); the first step checks the scores against the full output layer's.
        """
        out = model(
            **inputs,
            logits_to_keep=torch.empty(0, dtype=torch.long),
            output_hidden_states=True,
            use_cache=False,
        )
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        ids = self.yes_ids + self.no_ids
        bias = None if head.bias is None else head.bias[ids]
        rows = F.linear(out.hidden_states[-1][:, -1], head.weight[ids], bias)
        scores = delta_from_answer_rows(rows, len(self.yes_ids))
        if not self._checked:
            self._check_against_full_logits(model, inputs, scores)
        return scores

    def _check_against_full_logits(self, model, inputs, scores) -> None:
        with torch.no_grad():
            logits = model(**inputs, logits_to_keep=1, use_cache=False).logits[:, -1]
            yes, no = answer_logprobs(logits, self.yes_ids, self.no_ids)
        full, ours = yes - no, scores.detach()
        finite = torch.isfinite(full)  # a broken model's NaN is the loss check's to report
        gap = float((ours - full)[finite].abs().max()) if finite.any() else 0.0
        scale = float(full[finite].abs().max()) if finite.any() else 1.0
        if not (torch.isfinite(ours) == finite).all() or not gap <= 1e-3 * max(1.0, scale):
            raise RuntimeError(
                f"{type(self.accelerator.unwrap_model(model)).__name__}: scores from the "
                f"answer rows differ from the full output layer's by {gap:.3g}; its last "
                "hidden state is not what its output layer reads"
            )
        log.info("answer-row scores match the full output layer's (largest gap %.2g)", gap)
        self._checked = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("group_labels")
        teacher = inputs.pop("teacher_p_yes")
        scores = self.answer_scores(model, inputs)
        terms = reranker_loss(scores.view(labels.shape), labels, teacher, self.weights)
        if not torch.isfinite(terms["loss"]):
            # stop here: a NaN step would leave every weight NaN and the run would "succeed"
            raise FloatingPointError(
                f"stage 2, step {self.state.global_step}: the loss is not finite "
                f"({ {k: v.item() for k, v in terms.items()} }); no model is saved"
            )
        for name, value in terms.items():
            if name != "loss":
                self._terms[name].append(value.detach().item())
        return (terms["loss"], {"scores": scores}) if return_outputs else terms["loss"]

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:
            logs.update({name: sum(v) / len(v) for name, v in self._terms.items() if v})
            self._terms.clear()
        super().log(logs, *args, **kwargs)


def scoring_profile(settings: dict, video: VideoSettings) -> dict:
    """How the trained model is to be scored: as it was trained (rankvideo.profile)."""
    return profile_for_training(
        settings["template"], settings["answer_words"], dataclasses.asdict(video)
    )


def train_reranker(settings: dict, callbacks=()) -> dict:
    """Train `settings['model']` (stage 1's) on the ranking records; see DEFAULTS for the keys."""
    settings = {**DEFAULTS, **settings}
    weights = LossWeights(**settings["losses"])  # bad loss settings fail before any work
    records = formats.read_training_records(settings["train_data"])
    groups, report = make_groups(records, settings["num_negatives"], settings["seed"])
    log.info("stage 2 groups: %s", report)
    if report["without_positive"] or report["without_negative"]:
        log.warning(
            "%d queries without a positive and %d without a negative are left out",
            report["without_positive"], report["without_negative"],
        )  # fmt: skip
    if not groups:
        raise ValueError(f"{settings['train_data']}: no query has both a positive and a negative")
    model, processor, video = model_for_stage(settings)
    yes, no = settings["answer_words"]
    work_dir = Path(settings["work_dir"])
    trainer = RerankerTrainer(
        model=model,
        args=training_arguments(settings, work_dir),
        train_dataset=groups,
        callbacks=list(callbacks),
        data_collator=GroupCollator(processor, video, settings["template"]),
        yes_ids=answer_ids(processor.tokenizer, yes, get_profile(settings["template"]).answers),
        no_ids=answer_ids(processor.tokenizer, no, get_profile(settings["template"]).answers),
        weights=weights,
    )
    run_trainer(trainer, work_dir)
    save_model(
        trainer,
        processor,
        settings["output_dir"],
        {**settings, "groups": report, "scoring": scoring_profile(settings, video)},
        settings["method"],
    )
    return report


def main(argv=None):
    data_help = "ranking records (the release's training format)"
    stage_main("Stage 2: reranker training.", train_reranker, data_help, argv)


if __name__ == "__main__":
    main()
