"""Latent directions of the project's own G: found without labels, named by measurement.

Discovery (GANSpace-style, no labels): sample z ~ N(0, I) and classes, take G's features
at the three sizes the colorization net reads (spatial means, standardised per channel),
find their principal components, and map each component back to z by regression (the
z direction whose projection best predicts the component's score). The directions are
made orthonormal, in the order of the variance they explain.

Measurement: each direction is walked by +-`amount` on validation photos through the
whole model, and the change of the colorized output is measured in CIELAB: mean chroma
(saturation), mean a* (green -> magenta), mean b* (blue -> yellow), in the centre (the
object, usually) and on the border (the background), plus the mean colour change
(Delta E on ab; L is fixed). A direction is named by its largest effect and oriented so
that a positive amount increases it; the strongest distinct ones are shipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..model.deformator import NamedDirections
from ..model.gcp import GCPModel
from ..model.lab import AB_SCALE

QUANTITIES = {"saturation": "chroma", "warmth": "b", "tint": "a"}  # name -> measured channel
REGION_DOMINANCE = 1.5  # a region's effect this much larger than the other's names it


@torch.no_grad()
def discover(model: GCPModel, classes: torch.Tensor, count: int = 8, samples: int = 512,
             batch_size: int = 32, seed: int = 0) -> torch.Tensor:
    """(count, dim_z) orthonormal directions, most explained feature variance first."""
    rng = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    generator = model.generator
    zs, features = [], []
    for start in range(0, samples, batch_size):
        n = min(batch_size, samples - start)
        z = torch.randn(n, model.config.dim_z, generator=rng)
        pick = classes[torch.randint(len(classes), (n,), generator=rng)]
        _, maps = generator(z.to(device), generator.shared(pick.to(device)))
        features.append(torch.cat([maps[s].mean(dim=(2, 3)) for s in sorted(maps)], 1).cpu())
        zs.append(z)
    z, f = torch.cat(zs).double(), torch.cat(features).double()
    f = (f - f.mean(0)) / (f.std(0) + 1e-8)
    _, _, v = torch.linalg.svd(f, full_matrices=False)
    scores = f @ v[:count].T                                   # (samples, count)
    # Least squares z -> score: the direction whose projection predicts the score.
    directions = torch.linalg.lstsq(z, scores).solution.T     # (count, dim_z)
    q, _ = torch.linalg.qr(directions.T)                       # orthonormal, order kept
    return (q.T * torch.sign(torch.diagonal(q.T @ directions.T))[:, None]).float()


@dataclass
class Effect:
    """Mean change of the colorized output per unit of walk (units: CIELAB)."""
    chroma: float
    a: float
    b: float
    centre_chroma: float
    centre_a: float
    centre_b: float
    border_chroma: float
    border_a: float
    border_b: float
    delta_e: float  # mean |ab change| at the measured amount, both signs averaged

    def flipped(self) -> Effect:
        """The effect of the opposite direction."""
        values = {k: -v for k, v in asdict(self).items()}
        return Effect(**{**values, "delta_e": self.delta_e})


def _region_means(ab: torch.Tensor) -> dict[str, torch.Tensor]:
    """ab (B, 2, R, R) in CIELAB units -> per image means of chroma, a, b over the whole
    image, the centre half-size square and the border outside it."""
    r = ab.size(-1)
    centre = torch.zeros(r, r, dtype=torch.bool, device=ab.device)
    centre[r // 4:r - r // 4, r // 4:r - r // 4] = True
    chroma = ab.norm(dim=1)                                          # (B, R, R)
    values = {"chroma": chroma, "a": ab[:, 0], "b": ab[:, 1]}
    means = {}
    for key, value in values.items():
        means[key] = value.mean(dim=(1, 2))
        means["centre_" + key] = value[:, centre].mean(dim=1)
        means["border_" + key] = value[:, ~centre].mean(dim=1)
    return means


@torch.no_grad()
def measure(model: GCPModel, x_l: torch.Tensor, classes: torch.Tensor, direction: torch.Tensor,
            amount: float, semantic: torch.Tensor | None = None) -> Effect:
    """Walk `direction` by -amount and +amount on the photos x_l (B, 1, R, R) (`semantic`:
    their classifier maps, for configs with semantic_features)."""
    shift = amount * direction.to(x_l.device)
    base = model(x_l, classes, semantic=semantic) * AB_SCALE
    plus = model(x_l, classes, shift, semantic) * AB_SCALE
    minus = model(x_l, classes, -shift, semantic) * AB_SCALE
    up, down = _region_means(plus), _region_means(minus)
    slopes = {k: float((up[k] - down[k]).mean() / (2 * amount)) for k in up}
    delta_e = float(((plus - base).norm(dim=1).mean() + (minus - base).norm(dim=1).mean()) / 2)
    return Effect(**slopes, delta_e=delta_e)


def name_of(effect: Effect) -> tuple[str, float]:
    """The effect's name ("saturation", "background warmth", ...) and its sign."""
    quantity = max(QUANTITIES, key=lambda q: abs(getattr(effect, QUANTITIES[q])))
    channel = QUANTITIES[quantity]
    centre, border = abs(getattr(effect, "centre_" + channel)), abs(getattr(effect, "border_" + channel))
    if border > REGION_DOMINANCE * centre:
        quantity = "background " + quantity
    elif centre > REGION_DOMINANCE * border:
        quantity = "object " + quantity
    sign = 1.0 if getattr(effect, channel) >= 0 else -1.0
    return quantity, sign


@dataclass
class MeasuredDirection:
    name: str
    vector: torch.Tensor  # (dim_z,) unit, oriented so that + increases the named quantity
    component: int        # principal-component rank it came from
    amount: float         # the walk used for the measurement
    effect: Effect

    def summary(self) -> dict:
        return {"name": self.name, "component": self.component, "amount": self.amount,
                "effect_per_unit": asdict(self.effect)}


def named_directions(model: GCPModel, x_l: torch.Tensor, classes: torch.Tensor,
                     candidates: torch.Tensor, amount: float, keep: int = 4,
                     semantic: torch.Tensor | None = None) -> list[MeasuredDirection]:
    """Measure every candidate, name it, keep the `keep` strongest (by Delta E) with
    distinct names."""
    measured = []
    for k, vector in enumerate(candidates):
        effect = measure(model, x_l, classes, vector, amount, semantic)
        name, sign = name_of(effect)
        measured.append(MeasuredDirection(name, sign * vector, k, amount,
                                          effect if sign > 0 else effect.flipped()))
    measured.sort(key=lambda m: m.effect.delta_e, reverse=True)
    chosen, names = [], set()
    for m in measured:
        if m.name not in names:
            chosen.append(m)
            names.add(m.name)
        if len(chosen) == keep:
            break
    return chosen


def as_named(directions: list[MeasuredDirection]) -> NamedDirections:
    return NamedDirections([d.name for d in directions],
                           torch.stack([d.vector for d in directions]))
