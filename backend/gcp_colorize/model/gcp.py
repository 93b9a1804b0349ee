"""GCPModel: encoder, BigGAN prior, D features, correspondence and colorization wired as
in the paper (Wu et al. 2021, "Towards Vivid and Diverse Image Colorization with
Generative Color Prior").

    z = E(x_l, class) (+ shift) -> ref_rgb, F = G(z, class) -> theta, phi from D features
    of x_l and ref_rgb -> F warped to x_l -> ab_norm = colorization(x_l, warped F)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .biggan_discriminator import DiscriminatorFeatures
from .biggan_generator import BigGANGenerator
from .colorization_net import ColorizationNet
from .config import GCPConfig
from .correspondence import CorrespondenceNet
from .encoder import GANEncoder
from .lab import neutral_gray


@dataclass
class GCPOutputs:
    z: torch.Tensor                    # (B, dim_z), shift included
    reference: torch.Tensor            # (B, 3, R, R) G's image in [-1, 1]
    warped: dict[int, torch.Tensor]    # {R/4, R/2, R: (B, C, s, s)} G features warped to x_l
    ab_norm: torch.Tensor              # (B, 2, R, R) = ab/110 in [-1, 1]
    # Only when `run` gets colour photos (training's domain alignment): the query
    # embedding theta of x_l and the reference embedding phi of its colour photo, (B, N, nl).
    alignment: tuple[torch.Tensor, torch.Tensor] | None = None


class GCPModel(nn.Module):
    """The networks of one weights set. Submodule names are the weights-file names."""

    NETWORKS = ("encoder", "generator", "discriminator_features", "correspondence",
                "colorization")
    PRIOR_FREE_NETWORKS = ("colorization",)  # config.gan_prior False: the ablation

    def __init__(self, config: GCPConfig):
        super().__init__()
        self.config = config
        if config.gan_prior:
            self.encoder = GANEncoder(config)
            self.generator = BigGANGenerator(config)
            self.discriminator_features = DiscriminatorFeatures(config)
            self.correspondence = CorrespondenceNet(config)
        self.colorization = ColorizationNet(config)
        self.to_channels_last()

    def to_channels_last(self) -> GCPModel:
        """Store the conv kernels in channels-last memory, the layout the networks run in
        (faster CPU convolutions; no conversion on every call). Loading with
        `assign=True` replaces the tensors: call it again after that."""
        return self.to(memory_format=torch.channels_last)

    @staticmethod
    def networks_of(config: GCPConfig) -> tuple[str, ...]:
        """The networks a model of `config` holds, i.e. its weights directory's files."""
        return GCPModel.NETWORKS if config.gan_prior else GCPModel.PRIOR_FREE_NETWORKS

    def zero_conditions(self, batch: int, device: torch.device) -> dict[int, torch.Tensor]:
        """The colorization net's conditions without the GAN prior: zeros shaped like the
        warped features, {R/4, R/2, R: (batch, C, s, s)}."""
        return {s: torch.zeros(batch, self.config.feature_channels[s], s, s, device=device)
                for s in self.config.feature_resolutions}

    def _check_inputs(self, x_l: torch.Tensor, class_index: torch.Tensor):
        r = self.config.resolution
        if x_l.dim() != 4 or x_l.shape[1:] != (1, r, r):
            raise ValueError(f"x_l must be (B, 1, {r}, {r}) for config {self.config.name!r}, "
                             f"got {tuple(x_l.shape)}")
        if class_index.shape != (x_l.size(0),) or class_index.dtype != torch.long:
            raise ValueError(f"class_index must be a (B,) = ({x_l.size(0)},) int64 tensor, got "
                             f"{tuple(class_index.shape)} {class_index.dtype}")
        if class_index.numel() and not (0 <= int(class_index.min())
                                        and int(class_index.max()) < self.config.n_classes):
            raise ValueError(f"class index out of range 0..{self.config.n_classes - 1}: "
                             f"{class_index.tolist()}")

    def read_gray(self, classifier, x_l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The ImageNetClassifier's one pass over the neutral-gray picture of x_l (B, 1, R, R):
        its (B, 1000) logits (the conditioning class comes from them) and what `run` takes
        as `semantic` (the classifier's maps, or None for configs without semantic_features)."""
        return classifier.read(neutral_gray(x_l), maps=self.config.semantic_features)

    def infer_z(self, x_l: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        """x_l (B, 1, R, R), class_index (B,) -> z (B, dim_z)."""
        return self.encoder(x_l, self.encoder.shared(class_index))

    def reference(self, z: torch.Tensor, class_index: torch.Tensor):
        """z (B, dim_z) -> G's image (B, 3, R, R) and features {R/4, R/2, R: map}."""
        return self.generator(z, self.generator.shared(class_index))

    def warp(self, x_l: torch.Tensor, reference: torch.Tensor, features: dict[int, torch.Tensor],
             colour: torch.Tensor | None = None):
        """Align G's features with the input. D is a frozen feature net here (as in the
        official code: no gradient flows through it). With `colour` (B, 3, R, R) in
        [-1, 1], the colour photos of x_l, returns (warped, (theta, phi of the photos)),
        the query embedding computed once for both; else warped."""
        images = [x_l.expand_as(reference), reference] + ([] if colour is None else [colour])
        with torch.no_grad():  # every image as one batch: one pass over D's weights
            parts = [f.split(x_l.size(0)) for f in self.discriminator_features(torch.cat(images))]
        query_features = [p[0] for p in parts]
        ref_features = [torch.cat(p[1:]) for p in parts]
        theta, phi = self.correspondence(query_features, ref_features)
        phi, *colour_phi = phi.split(x_l.size(0))
        sizes = sorted(features)
        warped = dict(zip(sizes, self.correspondence.warp(theta, phi, [features[s] for s in sizes])))
        return warped if colour is None else (warped, (theta, colour_phi[0]))

    def run(self, x_l: torch.Tensor, class_index: torch.Tensor,
            z_shift: torch.Tensor | None = None, colour: torch.Tensor | None = None,
            semantic: torch.Tensor | None = None) -> GCPOutputs:
        """Every stage's output; z_shift (dim_z,) or (B, dim_z) is added to E's z. With
        `colour` (training only; see `warp`) the outputs include `alignment`. `semantic`:
        the classifier's maps of x_l's gray picture, for configs with semantic_features.
        Without the GAN prior (the ablation) z and the reference are zeros."""
        self._check_inputs(x_l, class_index)
        if not self.config.gan_prior:
            b, r = x_l.size(0), self.config.resolution
            warped = self.zero_conditions(b, x_l.device)
            return GCPOutputs(x_l.new_zeros(b, self.config.dim_z), x_l.new_zeros(b, 3, r, r),
                              warped, self.colorization(x_l, warped, semantic))
        z = self.infer_z(x_l, class_index)
        if z_shift is not None:
            z = z + z_shift.to(z)
        reference, features = self.reference(z, class_index)
        if colour is None:
            warped, alignment = self.warp(x_l, reference, features), None
        else:
            warped, alignment = self.warp(x_l, reference, features, colour)
        return GCPOutputs(z, reference, warped, self.colorization(x_l, warped, semantic), alignment)

    def forward(self, x_l: torch.Tensor, class_index: torch.Tensor,
                z_shift: torch.Tensor | None = None,
                semantic: torch.Tensor | None = None) -> torch.Tensor:
        """x_l (B, 1, R, R) = L/50 - 1, class_index (B,) ImageNet indices ->
        ab_norm (B, 2, R, R) = ab/110 in [-1, 1] (the official `fake_ab`)."""
        return self.run(x_l, class_index, z_shift, semantic=semantic).ab_norm
