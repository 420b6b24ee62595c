"""The stage-2 loss settings, checked without torch so the workflow can refuse bad ones
when it starts, before any job runs (see rankvideo.losses for the losses themselves)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossWeights:
    listwise: float = 1.0
    tau_rank: float = 10.0
    distill: float = 5.0
    tau_distill: float = 5.0
    pointwise: float = 1.0
    tau_point: float = 1.0
    positive_target: float = 1.0
    negative_target: float = 0.1
    positive_weight: float = 1.0
    negative_weight: float = 0.5

    def __post_init__(self):
        """Settings that would crash training or make it NaN are refused before it starts."""
        fields = self.__dataclass_fields__
        if any(isinstance(getattr(self, f), bool) for f in fields) or not all(
            isinstance(getattr(self, f), (int, float)) for f in fields
        ):
            raise ValueError(f"stage2.losses: every value must be a number, got {self}")
        negative = [f for f in fields if not getattr(self, f) >= 0]  # NaN is refused too
        if negative:
            raise ValueError(f"stage2.losses: {', '.join(negative)} must be >= 0")
        zero_tau = [f for f in ("tau_rank", "tau_distill", "tau_point") if getattr(self, f) == 0]
        if zero_tau:
            raise ValueError(f"stage2.losses: {', '.join(zero_tau)} must be > 0")
        if not (self.listwise or self.distill or self.pointwise):
            raise ValueError(
                "stage2.losses: listwise, distill and pointwise are all 0: nothing to train"
            )
        if self.pointwise and not (self.positive_weight or self.negative_weight):
            raise ValueError(
                "stage2.losses: pointwise is on but positive_weight and negative_weight are "
                "both 0 (the pointwise loss would be 0/0)"
            )
        for name in ("positive_target", "negative_target"):
            if getattr(self, name) > 1:
                raise ValueError(f"stage2.losses: {name} {getattr(self, name)} is not in [0, 1]")
