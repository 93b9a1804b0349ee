"""Stage 2's loss weights and their command-line overrides (no torch: the CLI's help
lists the names)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossWeights:
    """Chosen so that each term starts near 1 (the classifier's stage-5 features are large:
    their MSE starts near 30; the embeddings' L1 near 0.15)."""
    adversarial: float = 1.0
    perceptual: float = 0.05
    contextual: float = 1.0
    domain: float = 5.0
    ab: float = 1.0
    palette: float = 0.0
    rebalanced_ab: float = 0.0
    cast: float = 0.0  # the output's mean a, b towards the photo's (a tint over the whole photo)
    alternative_cast: float = 0.0  # the same for the shifted samples' (the alternatives') outputs
    diversity: float = 0.0
    local_diversity: float = 0.0  # diversity with each image's mean difference removed


LOSS_NAMES = tuple(LossWeights.__dataclass_fields__)


def loss_weights(overrides: list[str]) -> LossWeights:
    """LossWeights with "name=value" overrides (the command line's --loss-weight)."""
    values = {}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in LOSS_NAMES:
            raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSS_NAMES)}")
        try:
            values[name] = float(value)
        except ValueError:
            raise ValueError(f"loss weight {item!r} is not NAME=NUMBER") from None
    return LossWeights(**values)
