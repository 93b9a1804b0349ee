"""Stage 1: train the GAN encoder E with G (and D) frozen (paper eq. 2, 3, 8).

z = E(x_l, class) should make G(z, class) look like the colour photo whose gray version
E saw. As in the paper (following DGP), "look like" is measured in the frozen
discriminator's feature space, block by block (L1), plus an L2 penalty on z that keeps
it where G was trained (z ~ N(0, I)). We add a small pixel term on 8x8-pooled images so
the inversion also matches the photo's large colour areas, which is what the colour
prior must deliver; the D features alone were trained to tell real from fake, not to
match colours.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..model.classifier import ImageNetClassifier
from ..model.config import GCPConfig
from ..model.encoder import GANEncoder
from ..model.lab import rgb_to_model_input
from .class_embedding import install_semantic_embedding
from .photos import gray_classes, photo_batch, sample_crops, stage_photo_sets
from .run_state import stage_checkpoint
from .samples import save_grid
from .stage0_prior import load_prior


def discriminator_activations(discriminator, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every D stage for images x (B, 3, R, R) in [-1, 1]."""
    activations, h = [], x
    for stage in discriminator.blocks:
        for module in stage:
            h = module(h)
        activations.append(h)
    return activations


def photo_classes(dataset) -> torch.Tensor:
    """(N,) the pseudo-labels of a training set: the classes for G's standing statistics."""
    return torch.tensor(dataset.labels, dtype=torch.long)


class EncoderStage:
    name = "stage1"

    def __init__(self, config: GCPConfig, device: torch.device, *, seed: int, prior_run: Path,
                 batch_size: int = 8, lr: float = 1e-4, z_weight: float = 0.05,
                 pixel_weight: float = 1.0, dataset=None, sample_set=None):
        self.config, self.device, self.batch_size = config, device, batch_size
        self.dataset, self.sample_set = stage_photo_sets(config.resolution, seed, dataset, sample_set)
        self.classifier = ImageNetClassifier(device)
        self.generator, self.discriminator, prior_step = load_prior(
            prior_run, config, device, photo_classes(self.dataset))
        self.hyper = {"lr": lr, "z_weight": z_weight, "pixel_weight": pixel_weight,
                      "prior_run": str(Path(prior_run).resolve()), "prior_step": prior_step}
        self.encoder = GANEncoder(config).to(device)
        install_semantic_embedding(self.encoder.shared)
        self.opt = torch.optim.Adam([p for p in self.encoder.parameters() if p.requires_grad],
                                    lr=lr, betas=(0.9, 0.999))

    def options(self) -> dict:
        return {"stage": self.name, "config": self.config.to_dict(),
                "batch_size": self.batch_size, **self.hyper}

    def invert(self, x_l: torch.Tensor, classes: torch.Tensor):
        """x_l (B, 1, R, R) -> z (B, dim_z) and G's image (B, 3, R, R) in [-1, 1]."""
        z = self.encoder(x_l, self.encoder.shared(classes))
        return z, self.generator(z, self.generator.shared(classes))[0]

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        photos = photo_batch(batch, self.device)
        classes = gray_classes(self.classifier, photos.x_l, self.config.n_classes)
        self.encoder.train()
        z, image = self.invert(photos.x_l, classes)
        with torch.no_grad():
            real = discriminator_activations(self.discriminator, photos.rgb_signed)
        fake = discriminator_activations(self.discriminator, image)
        feature = sum(F.l1_loss(f, r) for f, r in zip(fake, real)) / len(real)
        pixel = F.l1_loss(F.avg_pool2d(image, 8), F.avg_pool2d(photos.rgb_signed, 8))
        prior = z.pow(2).mean()
        loss = feature + self.hyper["pixel_weight"] * pixel + self.hyper["z_weight"] * prior
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "feature": feature.item(), "pixel": pixel.item(),
                "z2": prior.item()}

    def state_dict(self) -> dict:
        return {"encoder": self.encoder.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.opt.load_state_dict(state["opt"])

    @torch.no_grad()
    def write_samples(self, path: Path) -> None:
        """Row 1: validation photos; row 2: G(E(gray photo))."""
        crops = sample_crops(self.sample_set).to(self.device)
        x_l = rgb_to_model_input(crops)
        self.encoder.eval()
        _, image = self.invert(x_l, gray_classes(self.classifier, x_l, self.config.n_classes))
        save_grid([crops, (image + 1) / 2], path)


def load_encoder(run_dir: Path, config: GCPConfig, device: torch.device) -> tuple[GANEncoder, dict]:
    """The stage-1 encoder of `run_dir` (eval mode, frozen) and that run's options."""
    checkpoint = stage_checkpoint(run_dir, EncoderStage.name, config, f"no stage-1 run in {run_dir}: "
                                  f"run `gcp-colorize train stage1` first (or pass --encoder-run)", device)
    encoder = GANEncoder(config).to(device)
    encoder.load_state_dict(checkpoint["stage"]["encoder"])
    encoder.eval().requires_grad_(False)
    return encoder, checkpoint["options"]
