"""Latent directions for walks in z: the official orthogonal deformator and named
directions (the project's own, or picked from the official ones).

Official format (Voynov & Babenko 2020, "ORTHO" deformator): a square parameter
`log_mat_half` = A; the directions are the columns of M = expm(A - A^T); a step s along
direction k shifts z by s * M[:, k], with zeros appended for z dims the deformator does
not cover (z[119] of the 256 model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# The official demo walks 7 evenly spaced steps from -16 to 16.
OFFICIAL_STEPS = tuple(np.arange(-16, 16 + 1e-9, 16 / 3).tolist())
# The colour-relevant columns of the released deformator (official README).
OFFICIAL_COLOUR_DIRECTIONS = {"background colour": 4, "object colour": 6, "saturation": 23}


def direction_matrix(log_mat_half: torch.Tensor) -> torch.Tensor:
    """(n, n) A -> (n, n) orthogonal M = expm(A - A^T); directions are its columns.
    Computed in float64 (cheap at this size), returned in A's dtype."""
    if log_mat_half.dim() != 2 or log_mat_half.size(0) != log_mat_half.size(1):
        raise ValueError(f"log_mat_half must be square, got {tuple(log_mat_half.shape)}")
    a = log_mat_half.to(torch.float64)
    return torch.linalg.matrix_exp(a - a.t()).to(log_mat_half.dtype)


def official_shift(matrix: torch.Tensor, index: int, step: float, dim_z: int) -> torch.Tensor:
    """step * M[:, index], zero-padded to (dim_z,)."""
    shift = torch.zeros(dim_z, dtype=matrix.dtype, device=matrix.device)
    shift[:matrix.size(0)] = step * matrix[:, index]
    return shift


@dataclass
class NamedDirections:
    """Directions in z by name: `vectors` (K, dim_z), row k is direction `names[k]`."""
    names: list[str]
    vectors: torch.Tensor

    def __post_init__(self):
        if self.vectors.dim() != 2 or self.vectors.size(0) != len(self.names):
            raise ValueError(f"{len(self.names)} names but vectors of shape "
                             f"{tuple(self.vectors.shape)}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate direction names in {self.names}")

    def shift(self, name: str, amount: float) -> torch.Tensor:
        """amount * the named direction, shape (dim_z,)."""
        if name not in self.names:
            raise KeyError(f"unknown direction {name!r}; known: {', '.join(self.names)}")
        return amount * self.vectors[self.names.index(name)]

    @classmethod
    def from_official(cls, log_mat_half: torch.Tensor, dim_z: int,
                      picks: dict[str, int] = OFFICIAL_COLOUR_DIRECTIONS) -> NamedDirections:
        """The named columns of an official deformator, as unit shifts in z."""
        matrix = direction_matrix(log_mat_half.to(torch.float64))
        vectors = torch.stack([official_shift(matrix, k, 1.0, dim_z) for k in picks.values()])
        return cls(list(picks), vectors.to(torch.float32))
