import math

import pytest
import torch

from rankvideo.losses import (
    LossWeights,
    distill_loss,
    listwise_loss,
    pointwise_loss,
    reranker_loss,
)

SCORES = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])


def bce(logit, target):
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_listwise_by_hand():
    tau = 10.0
    expected = 0.0
    for row in SCORES.tolist():
        z = [s / tau for s in row]
        expected += -(z[0] - math.log(sum(math.exp(v) for v in z)))
    assert listwise_loss(SCORES, tau).item() == pytest.approx(expected / 2, rel=1e-6)


def test_distill_by_hand_skips_missing_teacher_scores():
    teacher = torch.tensor([[0.9, float("nan"), 0.2], [0.6, 0.3, float("nan")]])
    pairs = [(2.0, 0.9), (-1.0, 0.2), (0.5, 0.6), (1.5, 0.3)]
    expected = sum(bce(s / 5.0, t) for s, t in pairs) / len(pairs)
    assert distill_loss(SCORES, teacher, 5.0).item() == pytest.approx(expected, rel=1e-6)
    nothing = torch.full_like(SCORES, float("nan"))
    assert distill_loss(SCORES, nothing, 5.0).item() == 0.0


def test_pointwise_by_hand():
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    w = LossWeights()
    terms = []
    for row in SCORES.tolist():
        terms.append((1.0, bce(row[0], 1.0)))
        terms += [(0.5, bce(s, 0.1)) for s in row[1:]]
    expected = sum(a * b for a, b in terms) / sum(a for a, _ in terms)
    assert pointwise_loss(SCORES, labels, w).item() == pytest.approx(expected, rel=1e-6)


def test_weighted_sum_and_switched_off_terms():
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    teacher = torch.tensor([[0.9, 0.1, 0.2], [0.6, 0.3, 0.4]])
    terms = reranker_loss(SCORES, labels, teacher, LossWeights())
    total = terms["listwise"] + 5 * terms["distill"] + terms["pointwise"]
    assert terms["loss"].item() == pytest.approx(total.item())
    only = reranker_loss(SCORES, labels, teacher, LossWeights(distill=0, pointwise=0, tau_rank=1))
    assert set(only) == {"listwise", "loss"}
    assert only["loss"].item() == pytest.approx(listwise_loss(SCORES, 1.0).item())


def test_listwise_gradient_raises_the_positive():
    scores = SCORES.clone().requires_grad_(True)
    listwise_loss(scores, 1.0).backward()
    assert (scores.grad[:, 0] < 0).all() and (scores.grad[:, 1:] > 0).all()


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"listwise": 0, "distill": 0, "pointwise": 0}, "all 0: nothing to train"),
        ({"positive_weight": 0, "negative_weight": 0}, "both 0"),
        ({"listwise": -1.0}, "listwise must be >= 0"),
        ({"tau_rank": 0}, "tau_rank must be > 0"),
        ({"distill": float("nan")}, "distill must be >= 0"),
        ({"negative_target": 1.5}, r"negative_target 1.5 is not in \[0, 1\]"),
        ({"pointwise": True}, "must be a number"),
        ({"tau_point": "1"}, "must be a number"),
    ],
)
def test_loss_settings_that_cannot_train_are_refused(settings, named):
    with pytest.raises(ValueError, match=named):
        LossWeights(**settings)


def test_pointwise_off_allows_zero_class_weights():
    weights = LossWeights(pointwise=0, positive_weight=0, negative_weight=0)
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    terms = reranker_loss(SCORES, labels, torch.full_like(SCORES, math.nan), weights)
    assert torch.isfinite(terms["loss"]) and "pointwise" not in terms
