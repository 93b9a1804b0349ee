"""Stage 0: train the colour prior, a class-conditional BigGAN (G and D), on our photos.

No pretrained BigGAN can be had here, so the project trains its own at the native
resolution of the config. Choices for ~500 photos on 2 CPU cores:
- hinge loss, Adam with betas (0, 0.999) and eps 1e-6, one D step per G step (BigGAN's
  2:1 is too costly here), G's learning rate a quarter of D's (`--lr` 5e-5 / `--d-lr`
  2e-4; at equal rates D never told photos from samples and G drew one grid of dots
  whatever z and class: see the model card);
- differentiable augmentation (translation + cutout) of every image D sees, real and
  generated, so D does not memorise the few photos;
- BigGAN's orthogonal initialisation of G and D (PyTorch's default leaves a fresh,
  spectrally normalised D nearly blind to its input: input gradients ~20x smaller);
- an EMA of G's weights (the generator that is exported), whose batch-norm statistics are
  recomputed ("standing statistics") before use;
- the class embedding is the frozen semantic table of `class_embedding`, and the class of
  a crop is the classifier's top-1 on its neutral gray picture, as in the Colorizer;
- a mode-seeking term (MSGAN) on pairs of samples of one class: early, few-step GAN
  training tends to ignore z, and the Colorizer's alternatives exist only if G's colours
  move with z;
- small batches (8): on this hardware more steps beat bigger batches.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..model.biggan_discriminator import BigGANDiscriminator
from ..model.biggan_generator import BigGANGenerator
from ..model.classifier import ImageNetClassifier
from ..model.config import GCPConfig
from ..model.lab import rgb_to_model_input
from .class_embedding import install_semantic_embedding
from .diffaugment import diff_augment
from .ema import EMA
from .gan_losses import hinge_d_loss, hinge_g_loss, mode_seeking_loss
from .photos import gray_classes, photo_batch, sample_crops, stage_photo_sets
from .run_state import stage_checkpoint
from .samples import save_grid

SAMPLE_SEED = 1234  # fixed z and classes of the sample pictures (own generator)


def batch_norms(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The BigGAN batch norms of a network (modules with `stored_mean` / `stored_var`)."""
    return [m for m in module.modules() if hasattr(m, "stored_mean") and hasattr(m, "stored_var")]


@torch.no_grad()
def standing_statistics(generator: BigGANGenerator, classes: torch.Tensor, *, batches: int = 16,
                        batch_size: int = 16, seed: int = 0) -> None:
    """Replace G's stored batch-norm statistics by their average over `batches` random
    batches (z ~ N(0, I), classes drawn from `classes`), computed with G's current weights.
    Only the norms run in train mode: spectral-norm vectors are left untouched. Uses its
    own generator, so training randomness is not consumed."""
    rng = torch.Generator().manual_seed(seed)
    norms = batch_norms(generator)
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    for norm in norms:
        norm.stored_mean.zero_()
        norm.stored_var.zero_()
        norm.train()
    for k in range(batches):
        for norm in norms:
            norm.momentum = 1.0 / (k + 1)  # cumulative average over the batches
        z = torch.randn(batch_size, generator.config.dim_z, generator=rng).to(device)
        pick = classes[torch.randint(len(classes), (batch_size,), generator=rng)].to(device)
        generator(z, generator.shared(pick))
    for norm in norms:
        norm.momentum = 0.1
        norm.eval()
    generator.train(was_training)


def orthogonal_init(network: torch.nn.Module) -> None:
    """Orthogonal weights for every trainable conv, linear and embedding (BigGAN's init);
    biases and frozen tables (G's semantic class embedding) are left as they are."""
    for module in network.modules():
        if (isinstance(module, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))
                and module.weight.requires_grad):
            torch.nn.init.orthogonal_(module.weight)


class GANPriorStage:
    name = "stage0"
    options_added_later = {"colour_augment": False}

    def __init__(self, config: GCPConfig, device: torch.device, *, seed: int,
                 batch_size: int = 8, g_lr: float = 5e-5, d_lr: float = 2e-4,
                 ema_decay: float = 0.999, mode_seeking: float = 0.1, colour_augment: bool = False,
                 init_from: Path | None = None, dataset=None, sample_set=None):
        self.config, self.device, self.batch_size = config, device, batch_size
        if batch_size < 2:
            raise ValueError("stage 0 needs a batch of at least 2 (mode-seeking pairs)")
        self.hyper = {"g_lr": g_lr, "d_lr": d_lr, "ema_decay": ema_decay,
                      "mode_seeking": mode_seeking, "colour_augment": colour_augment}
        self.dataset, self.sample_set = stage_photo_sets(config.resolution, seed, dataset, sample_set)
        self.classifier = ImageNetClassifier(device)
        self.generator = BigGANGenerator(config).to(device)
        install_semantic_embedding(self.generator.shared)
        self.discriminator = BigGANDiscriminator(config).to(device)
        for network in (self.generator, self.discriminator):
            orthogonal_init(network)  # a resumed or warm-started run then loads its own
        self.ema = EMA(self.generator, ema_decay)
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        self.g_opt = torch.optim.Adam(trainable, lr=g_lr, betas=(0.0, 0.999), eps=1e-6)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=d_lr,
                                      betas=(0.0, 0.999), eps=1e-6)
        if init_from is not None:
            self._start_from(Path(init_from))

    def _start_from(self, run_dir: Path) -> None:
        """Warm start: G, D and G's EMA of another stage-0 run (e.g. to go on with another
        batch size or learning rate); optimiser state and step start afresh."""
        checkpoint = stage_checkpoint(run_dir, self.name, self.config,
                                      f"no stage-0 run to start from in {run_dir}", self.device)
        for name in ("generator", "discriminator", "ema"):
            getattr(self, name).load_state_dict(checkpoint["stage"][name])
        self.hyper.update(init_from=str(run_dir.resolve()), init_step=checkpoint["step"])

    def options(self) -> dict:
        return {"stage": self.name, "config": self.config.to_dict(),
                "batch_size": self.batch_size, **self.hyper}

    def _paired_fakes(self, classes: torch.Tensor):
        """G images for the first half of `classes`, twice with independent z (the
        mode-seeking pairs): classes (B,) -> fp32 images (B', 3, R, R), their classes and z,
        B' = 2 * (B // 2). fp32 also under a bf16 autocast, as the photos are: the colour
        jitter would otherwise round the samples alone (~2e-3 rms of noise D can tell apart
        and G cannot remove)."""
        half = classes[:classes.size(0) // 2]
        paired = torch.cat((half, half))
        z = torch.randn(paired.size(0), self.config.dim_z, device=self.device)
        return self.generator(z, self.generator.shared(paired))[0].float(), paired, z

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        photos = photo_batch(batch, self.device)
        classes = gray_classes(self.classifier, photos.x_l, self.config.n_classes)
        self.generator.train()
        self.discriminator.train()

        # One G pass serves both updates: D learns on it detached, then G through the
        # updated D (saves a G forward per step, a third of the step's cost).
        fake, fake_classes, z = self._paired_fakes(classes)
        colour = self.hyper["colour_augment"]
        real_logits = self.discriminator(diff_augment(photos.rgb_signed, colour), classes)
        fake_logits = self.discriminator(diff_augment(fake.detach(), colour), fake_classes)
        d_loss = hinge_d_loss(real_logits, fake_logits)
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()

        self.discriminator.requires_grad_(False)
        g_loss = hinge_g_loss(self.discriminator(diff_augment(fake, colour), fake_classes))
        a, b = fake.chunk(2)
        z_a, z_b = z.chunk(2)
        mode_seeking = mode_seeking_loss(a, b, z_a, z_b)
        self.g_opt.zero_grad(set_to_none=True)
        (g_loss + self.hyper["mode_seeking"] * mode_seeking).backward()
        self.g_opt.step()
        self.discriminator.requires_grad_(True)
        self.ema.update(self.generator)
        return {"d": d_loss.item(), "g": g_loss.item(), "mode_seeking": mode_seeking.item(),
                "d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}

    def state_dict(self) -> dict:
        return {"generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(),
                "ema": self.ema.state_dict(), "g_opt": self.g_opt.state_dict(),
                "d_opt": self.d_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["ema"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])

    @torch.no_grad()
    def write_samples(self, path: Path) -> None:
        """Row 1: validation photos; rows 2-4: the EMA G for their gray classes, 3 z each."""
        rng = torch.Generator().manual_seed(SAMPLE_SEED)
        crops = sample_crops(self.sample_set).to(self.device)
        n = crops.size(0)
        classes = gray_classes(self.classifier, rgb_to_model_input(crops), self.config.n_classes)
        generator = self.ema.model
        standing_statistics(generator, classes, batches=4, batch_size=8)
        rows = [crops]
        for _ in range(3):
            z = torch.randn(n, self.config.dim_z, generator=rng).to(self.device)
            rows.append((generator(z, generator.shared(classes))[0] + 1) / 2)
        save_grid(rows, path)


def load_prior(run_dir: Path, config: GCPConfig, device: torch.device,
               classes: torch.Tensor) -> tuple[BigGANGenerator, BigGANDiscriminator, int]:
    """The finished (or current) stage-0 networks of `run_dir`, frozen, in eval mode:
    the EMA generator with standing statistics over `classes`, the discriminator, and the
    step they were taken at."""
    checkpoint = stage_checkpoint(run_dir, GANPriorStage.name, config, f"no stage-0 run in {run_dir}: "
                                  f"run `gcp-colorize train stage0` first (or pass --prior-run)", device)
    generator = BigGANGenerator(config).to(device)
    generator.load_state_dict(checkpoint["stage"]["ema"]["model"])
    discriminator = BigGANDiscriminator(config).to(device)
    discriminator.load_state_dict(checkpoint["stage"]["discriminator"])
    standing_statistics(generator, classes)
    for net in (generator, discriminator):
        net.eval().requires_grad_(False)
    return generator, discriminator, checkpoint["step"]
