"""Stage-2 losses over groups of one positive and n negatives (the paper's recipe).

Scores are `s = log P(yes) - log P(no)` at the answer slot, shape (groups, 1 + n),
positive first. Every constant is a config value; the paper's are the defaults.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rankvideo.loss_weights import LossWeights


def listwise_loss(scores: torch.Tensor, tau: float) -> torch.Tensor:
    """Softmax cross-entropy over each group's scores / tau, the positive (column 0) as target."""
    target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores / tau, target)


def distill_loss(scores: torch.Tensor, teacher_p_yes: torch.Tensor, tau: float) -> torch.Tensor:
    """BCE of sigmoid(s / tau) against the teacher's p_yes; NaN (no teacher score) is excluded."""
    known = ~torch.isnan(teacher_p_yes)
    if not known.any():
        return scores.sum() * 0.0
    return F.binary_cross_entropy_with_logits(scores[known] / tau, teacher_p_yes[known])


def pointwise_loss(scores: torch.Tensor, labels: torch.Tensor, w: LossWeights) -> torch.Tensor:
    """Weighted BCE of s / tau against soft targets (positive_target / negative_target)."""
    positive = labels > 0.5
    target = torch.where(positive, w.positive_target, w.negative_target).to(scores.dtype)
    weight = torch.where(positive, w.positive_weight, w.negative_weight).to(scores.dtype)
    per_pair = F.binary_cross_entropy_with_logits(scores / w.tau_point, target, reduction="none")
    return (weight * per_pair).sum() / weight.sum()


def reranker_loss(scores, labels, teacher_p_yes, w: LossWeights) -> dict[str, torch.Tensor]:
    """The weighted sum and each term (terms with weight 0 are not computed)."""
    terms = {}
    if w.listwise:
        terms["listwise"] = listwise_loss(scores, w.tau_rank)
    if w.distill:
        terms["distill"] = distill_loss(scores, teacher_p_yes, w.tau_distill)
    if w.pointwise:
        terms["pointwise"] = pointwise_loss(scores, labels, w)
    weights = {"listwise": w.listwise, "distill": w.distill, "pointwise": w.pointwise}
    terms["loss"] = sum(weights[name] * value for name, value in terms.items())
    return terms
