"""Stage 2: train the correspondence and colorization networks (paper eq. 4-10), E, G and
D frozen; with `use_prior=False`, the ablation "without GAN prior" (the colorization net
alone, its SPADE conditions all zero) under the same losses that do not need a prior.

Losses (generator side), weights in `LossWeights`:
- adversarial: multi-scale PatchGAN with spectral norm, LSGAN, judging (L, ab);
- perceptual: MSE of deep classifier features of output vs ground truth (the paper uses
  VGG19 relu5_2; no VGG exists offline, EfficientNet-Lite0 stands in, see feature_losses);
- contextual: output vs the GAN reference image G(z) (paper eq. 7), which is what makes
  the output take the prior's colours;
- domain alignment: the correspondence embeds the gray photo (query branch) and the same
  photo in colour (reference branch) to the same place (L1 between the embeddings);
- ours: smooth L1 on ab (alpha-weighted) for colour placement, optionally also with each
  pixel weighted by the rarity of its colour (`ColourRarity`: saturated colours count as
  much as the common grays); the cast loss (the output's mean colour towards the
  photo's: no tint over the whole photo), and the alternative cast (the same for the
  shifted samples and second alternatives: they may move colours within the photo, not
  tint all of it); the palette loss (`colour_losses`) towards the ground
  truth's colours, or the reference's for a shifted z (unless `reference_palette` is
  off); the diversity loss: the shifted samples run a second time with another shift, and
  the two colorizations are asked to differ (a hinge, `colour_losses.diversity_loss`),
  the second also judged by the PatchGAN and pulled like the first; local diversity, the
  same with a uniform cast not counted (only region-by-region differences).
Reason to use the prior (our addition): for a fraction `shift_probability` of the
samples z gets the same N(0, I) shift the Colorizer uses for alternatives; those samples
are trained with the reference-based losses only (contextual, adversarial), so the
networks learn to follow the reference's colours rather than ignore them. Unshifted
samples get every loss.
Warm start from the ablation (our addition, `init_from_ablation`): the colorization net
and PatchGAN of a trained no-prior run, with the weight of every SPADE's deformable conv
(the only path by which the warped features reach gamma and beta) set to zero. The full
model then starts out computing exactly the ablation's colours, and training opens the
prior's path only as far as the losses reward it (the "zero convolution" idea).
Fine-tuning exported weights (`from_weights`): every network comes from a weights
directory (e.g. the shipped `weights/default`), so training can go on from what the
repository holds when the run directories of stages 0 and 1 are gone. The PatchGAN is not
exported and starts afresh.
Weight averaging (`ema_decay`): an EMA of the trained networks (ema.py), which the export
takes; with batches of 4 single checkpoints swing, the average less.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import weights as weights_store
from ..model.classifier import ImageNetClassifier
from ..model.config import GCPConfig
from ..model.gcp import GCPModel
from ..model.lab import (model_output_to_rgb, neutral_gray, normalize_lab, rgb_to_lab,
                         rgb_to_model_input)
from ..model.spade import SPADE
from .colour_losses import ColourRarity, cast_loss, diversity_loss, palette_loss
from .ema import EMA
from .feature_losses import FeatureLosses
from .gan_losses import lsgan_d_loss, lsgan_g_loss
from .patch_discriminator import MultiScalePatchDiscriminator, scales_for
from .loss_weights import LOSS_NAMES, LossWeights
from .photos import photo_batch, sample_crops, stage_photo_sets, top_classes
from .run_state import stage_checkpoint
from .samples import save_grid
from .stage0_prior import load_prior
from .stage1_encoder import load_encoder, photo_classes



def trained_networks(config: GCPConfig) -> tuple[str, ...]:
    """The networks stage 2 trains: with the prior also the correspondence."""
    return ("correspondence", "colorization") if config.gan_prior else ("colorization",)


class ColorizationStage:
    # options that runs started before them do not record, with the value those runs had:
    # a loss weight a run does not record is a loss its code did not have (off)
    options_added_later = {"weights": dict.fromkeys(LOSS_NAMES, 0.0), "reference_palette": True}

    def __init__(self, config: GCPConfig, device: torch.device, *, seed: int, use_prior: bool = True,
                 prior_run: Path | None = None, encoder_run: Path | None = None,
                 batch_size: int = 4, lr: float = 1e-4, d_lr: float = 2e-4,
                 weights: LossWeights = LossWeights(), shift_probability: float = 0.5,
                 reference_palette: bool = True,
                 init_from: Path | None = None, init_from_ablation: Path | None = None,
                 from_weights: Path | None = None, ema_decay: float | None = None,
                 dataset=None, sample_set=None):
        if from_weights is not None and (init_from is not None or init_from_ablation is not None):
            raise ValueError("from_weights brings every network: it does not combine with "
                             "init_from or init_from_ablation")
        self.name = "stage2" if use_prior else "ablation"
        self.config = config if use_prior else dataclasses.replace(config, gan_prior=False)
        self.device, self.batch_size = device, batch_size
        self.use_prior = use_prior
        self.trained = trained_networks(self.config)
        self.weights = weights if use_prior else LossWeights(**{**asdict(weights), "contextual": 0.0,
                                                                "domain": 0.0})
        self.dataset, self.sample_set = stage_photo_sets(config.resolution, seed, dataset, sample_set)
        self.classifier = ImageNetClassifier(device)
        self.feature_losses = FeatureLosses(self.classifier)
        self.model = GCPModel(self.config).to(device)
        self.hyper = {"lr": lr, "d_lr": d_lr, "use_prior": use_prior,
                      "shift_probability": shift_probability if use_prior else 0.0}
        if use_prior:
            # whether the palette loss of shifted samples (no ground truth applies to them)
            # targets their GAN reference's palette; with a weak prior that is colour blobs
            self.hyper["reference_palette"] = reference_palette
        if from_weights is not None:
            self._load_weights(Path(from_weights))
        elif use_prior:
            self._load_prior(prior_run, encoder_run)
        self.rarity = colour_rarity(self.dataset) if self.weights.rebalanced_ab else None
        self.model.eval().requires_grad_(False)
        for name in self.trained:
            getattr(self.model, name).train().requires_grad_(True)
        self.patch_discriminator = MultiScalePatchDiscriminator(
            in_channels=3, scales=scales_for(config.resolution)).to(device)
        # the trained nets as one module: the optimiser's parameters and the EMA's subject
        self.trained_modules = torch.nn.ModuleDict({name: getattr(self.model, name)
                                                    for name in self.trained})
        self.opt = torch.optim.Adam(self.trained_modules.parameters(), lr=lr, betas=(0.5, 0.999))
        self.d_opt = torch.optim.Adam(self.patch_discriminator.parameters(), lr=d_lr,
                                      betas=(0.5, 0.999))
        self.ema = None
        if ema_decay is not None:
            self.ema = EMA(self.trained_modules, ema_decay)
            self.hyper["ema_decay"] = ema_decay
        if init_from is not None:
            self._start_from(Path(init_from))
        if init_from_ablation is not None:
            if not use_prior:
                raise ValueError("init_from_ablation is for the full model (stage 2); the "
                                 "ablation starts from another ablation run with init_from")
            self._start_from_ablation(Path(init_from_ablation))

    def _start_from(self, run_dir: Path) -> None:
        """Warm start: the trained networks and the PatchGAN of another run of this stage
        (e.g. one with other loss weights); optimiser state and step start afresh."""
        checkpoint = stage_checkpoint(run_dir, self.name, self.config,
                                      f"no {self.name} run to start from in {run_dir}", self.device)
        self._load_networks(checkpoint["stage"])
        self.hyper.update(init_from=str(run_dir.resolve()), init_step=checkpoint["step"])

    def _start_from_ablation(self, run_dir: Path) -> None:
        """Colorization net and PatchGAN of an ablation run, the prior's path closed (see the
        module docstring); the correspondence is kept (fresh, or from `init_from`)."""
        checkpoint = stage_checkpoint(run_dir, "ablation", dataclasses.replace(self.config, gan_prior=False),
                                      f"no ablation run to start from in {run_dir}", self.device)
        self.model.colorization.load_state_dict(checkpoint["stage"]["colorization"])
        self.patch_discriminator.load_state_dict(checkpoint["stage"]["patch_discriminator"])
        close_prior_path(self.model.colorization)
        self.hyper.update(init_from_ablation=str(run_dir.resolve()),
                          init_ablation_step=checkpoint["step"])

    def _load_weights(self, directory: Path) -> None:
        """Every network of a weights directory of this config (`from_weights`); the
        ablation also takes a full model's colorization net, the prior's path closed (the
        equal-start comparison for a fine-tuned full model)."""
        loaded = read_weights_for(directory, self.config)
        if not self.use_prior and loaded.config == dataclasses.replace(self.config, gan_prior=True):
            self.model.colorization.load_state_dict(loaded.colorization.state_dict())
            close_prior_path(self.model.colorization)
            self.hyper.update(from_weights=str(directory.resolve()), prior_path_closed=True)
            return
        if loaded.config != self.config:
            raise ValueError(f"the weights in {directory} are config {loaded.config.name!r} "
                             f"(gan_prior {loaded.config.gan_prior}), this run needs "
                             f"{self.config.name!r} (gan_prior {self.config.gan_prior})")
        self.model.load_state_dict(loaded.state_dict())
        self.hyper.update(from_weights=str(directory.resolve()))

    def _load_prior(self, prior_run: Path, encoder_run: Path) -> None:
        generator, discriminator, prior_step = load_prior(
            prior_run, self.config, self.device, photo_classes(self.dataset))
        encoder, encoder_options = load_encoder(encoder_run, self.config, self.device)
        if (encoder_options["prior_run"], encoder_options["prior_step"]) != (
                str(Path(prior_run).resolve()), prior_step):
            raise ValueError(
                f"the encoder in {encoder_run} was trained on the stage-0 run "
                f"{encoder_options['prior_run']} at step {encoder_options['prior_step']}, but "
                f"{prior_run} is at step {prior_step}: train stage1 again on this prior")
        self.model.generator.load_state_dict(generator.state_dict())
        self.model.discriminator_features.load_state_dict(discriminator.feature_net().state_dict())
        self.model.encoder.load_state_dict(encoder.state_dict())
        self.hyper.update(prior_run=encoder_options["prior_run"], prior_step=prior_step,
                          encoder_run=str(Path(encoder_run).resolve()))

    def options(self) -> dict:
        return {"stage": self.name, "config": self.config.to_dict(), "batch_size": self.batch_size,
                "weights": asdict(self.weights), **self.hyper}

    def read_gray(self, x_l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B,) conditioning classes (the ablation has no use for them: zeros) and the
        semantic maps `run` takes (None without them), from one classifier pass."""
        no_classes = torch.zeros(x_l.size(0), dtype=torch.long, device=self.device)
        if not self.use_prior and not self.config.semantic_features:
            return no_classes, None
        logits, semantic = self.model.read_gray(self.classifier, x_l)
        return (top_classes(logits, self.config.n_classes) if self.use_prior else no_classes), semantic

    def _shifts(self, batch: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Per-sample z shifts (zero rows for unshifted samples) and the unshifted mask."""
        shifted = torch.rand(batch, device=self.device) < self.hyper["shift_probability"]
        if not self.use_prior:
            return None, ~shifted
        noise = torch.randn(batch, self.config.dim_z, device=self.device)
        return noise * shifted[:, None], ~shifted

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        photos = photo_batch(batch, self.device)
        z_shift, unshifted = self._shifts(photos.x_l.size(0))
        # With the prior, the colour photos ride along for the domain alignment (their
        # embedding shares the pass, and theta of x_l is computed once for both uses).
        classes, semantic = self.read_gray(photos.x_l)
        out = self.model.run(photos.x_l, classes, z_shift,
                             colour=photos.rgb_signed if self.use_prior else None, semantic=semantic)
        ab = out.ab_norm

        real_lab = torch.cat((photos.x_l, photos.ab), 1)
        fake_lab = torch.cat((photos.x_l, ab), 1)
        d_loss = lsgan_d_loss(self.patch_discriminator(real_lab),
                              self.patch_discriminator(fake_lab.detach()))
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()

        w = self.weights
        shifted = ~unshifted
        second = None
        if (w.diversity or w.local_diversity) and self.use_prior and shifted.any():
            second = self.model.run(photos.x_l[shifted], classes[shifted],
                                    torch.randn(int(shifted.sum()), self.config.dim_z,
                                                device=self.device),
                                    semantic=None if semantic is None else semantic[shifted])
        # every output the step makes is judged, the second alternatives too
        judged = fake_lab if second is None else torch.cat(
            (fake_lab, torch.cat((photos.x_l[shifted], second.ab_norm), 1)))
        self.patch_discriminator.requires_grad_(False)
        losses = {"adversarial": lsgan_g_loss(self.patch_discriminator(judged))}
        self.patch_discriminator.requires_grad_(True)
        out_features = self.feature_losses.features(model_output_to_rgb(photos.x_l, ab))
        if unshifted.any():
            with torch.no_grad():
                gt_features = self.feature_losses.features(photos.rgb[unshifted])
            losses["perceptual"] = self.feature_losses.perceptual(
                [f[unshifted] for f in out_features], gt_features)
            weight = photos.alpha[unshifted]
            ab_error = F.smooth_l1_loss(ab[unshifted], photos.ab[unshifted], reduction="none",
                                        beta=0.05)
            opaque_values = (2 * weight.sum()).clamp(min=1.0)  # a and b of each opaque pixel
            losses["ab"] = (ab_error * weight).sum() / opaque_values
            if self.rarity is not None:
                rare = weight * self.rarity(photos.ab[unshifted])
                losses["rebalanced_ab"] = (ab_error * rare).sum() / opaque_values
            if w.cast:
                losses["cast"] = cast_loss(ab[unshifted], photos.ab[unshifted], weight)
        if w.alternative_cast and shifted.any():
            outputs, photo_ab, alpha = ab[shifted], photos.ab[shifted], photos.alpha[shifted]
            if second is not None:  # the same photos' second alternatives
                outputs = torch.cat((outputs, second.ab_norm))
                photo_ab, alpha = photo_ab.repeat(2, 1, 1, 1), alpha.repeat(2, 1, 1, 1)
            losses["alternative_cast"] = cast_loss(outputs, photo_ab, alpha)
        if second is not None:  # only the terms that are on: one at weight 0 is not computed
            for name, centred in (("diversity", False), ("local_diversity", True)):
                if getattr(w, name):
                    losses[name] = diversity_loss(ab[shifted], second.ab_norm, centred=centred)
        palette = self._palette_loss(photos, ab, out, unshifted, second) if w.palette else None
        if palette is not None:
            losses["palette"] = palette
        if self.use_prior:
            if w.contextual:  # at weight 0 the reference's features are not computed
                with torch.no_grad():
                    ref_features = self.feature_losses.features((out.reference + 1) / 2)
                losses["contextual"] = self.feature_losses.contextual(out_features, ref_features)
            theta, colour_phi = out.alignment  # paper eq. 4: gray query vs colour reference
            losses["domain"] = F.l1_loss(theta, colour_phi)
        total = sum(getattr(w, k) * v for k, v in losses.items())
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        if self.ema is not None:
            self.ema.update(self.trained_modules)
        return {"d": d_loss.item(), "total": total.item(), **{k: v.item() for k, v in losses.items()}}

    def _palette_loss(self, photos, ab: torch.Tensor, out, unshifted: torch.Tensor,
                      second) -> torch.Tensor | None:
        """Unshifted outputs towards their photo's palette; shifted ones (and the second
        alternatives) towards their GAN reference's, unless `reference_palette` is off
        (then None when every sample is shifted)."""
        if not (self.use_prior and self.hyper["reference_palette"]):
            if not unshifted.any():
                return None
            return palette_loss(ab[unshifted], photos.ab[unshifted])
        outputs = [ab]
        targets = [torch.where(unshifted[:, None, None, None], photos.ab,
                               reference_ab(out.reference))]
        if second is not None:
            outputs.append(second.ab_norm)
            targets.append(reference_ab(second.reference))
        return palette_loss(torch.cat(outputs), torch.cat(targets))

    def state_dict(self) -> dict:
        return {**{name: getattr(self.model, name).state_dict() for name in self.trained},
                "patch_discriminator": self.patch_discriminator.state_dict(),
                "opt": self.opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                **({"ema": self.ema.state_dict()} if self.ema is not None else {})}

    def _load_networks(self, state: dict) -> None:
        for name in self.trained:
            getattr(self.model, name).load_state_dict(state[name])
        self.patch_discriminator.load_state_dict(state["patch_discriminator"])

    def load_state_dict(self, state: dict) -> None:
        self._load_networks(state)
        self.opt.load_state_dict(state["opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    @torch.no_grad()
    def write_samples(self, path: Path) -> None:
        """Rows: gray input, colorized, (with the prior: 2 alternatives from shifted z and
        the main result's reference), ground truth."""
        crops = sample_crops(self.sample_set).to(self.device)
        x_l = rgb_to_model_input(crops)
        classes, semantic = self.read_gray(x_l)
        rng = torch.Generator().manual_seed(0)
        rows = [neutral_gray(x_l)]
        shifts = [None] + ([torch.randn(self.config.dim_z, generator=rng).to(self.device)
                            for _ in range(2)] if self.use_prior else [])
        outputs = [self.model.run(x_l, classes, shift, semantic=semantic) for shift in shifts]
        rows += [model_output_to_rgb(x_l, out.ab_norm) for out in outputs]
        if self.use_prior:
            rows.append((outputs[0].reference + 1) / 2)
        rows.append(crops)
        save_grid(rows, path)


@torch.no_grad()
def reference_ab(reference: torch.Tensor) -> torch.Tensor:
    """G's reference image (B, 3, H, W) in [-1, 1] -> its ab_norm (B, 2, H, W)."""
    return normalize_lab(rgb_to_lab((reference + 1) / 2))[1]


@torch.no_grad()
def close_prior_path(colorization: torch.nn.Module) -> None:
    """Zero the deformable-conv weights of every SPADE: gamma and beta then no longer depend
    on the warped features (the net computes what it computes with zero conditions), while
    the gradient of those weights is not zero, so training can open the path again."""
    for module in colorization.modules():
        if isinstance(module, SPADE):
            module.dcn.weight.zero_()


def read_weights_for(directory: Path, config: GCPConfig) -> GCPModel:
    """The model of a weights directory, given the semantic projection (at zero) when
    `config` has one and the weights do not."""
    model = weights_store.read_model(directory)
    if config.semantic_features and not model.config.semantic_features:
        model = with_semantic_features(model, config)
    return model


def with_semantic_features(model: GCPModel, config: GCPConfig) -> GCPModel:
    """A model of `config` with every trained tensor of `model`, whose config must be the
    same but for its name and semantic_features; the semantic projection starts at zero,
    so the colours stay the same until training opens it."""
    if dataclasses.replace(model.config, name=config.name, semantic_features=True) != config:
        raise ValueError(f"config {config.name!r} is not {model.config.name!r} with semantic features")
    widened = GCPModel(config)
    missing, unexpected = widened.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not key.startswith("colorization.semantic_projection.") for key in missing):
        raise ValueError(f"cannot add the semantic projection: missing {missing}, unexpected {unexpected}")
    return widened


def colour_rarity(dataset, size: int = 32) -> ColourRarity:
    """ColourRarity from the ground-truth colours of every photo of the training set (its
    first epoch's crops, pooled to size x size: the colours of regions, not of noise)."""
    colours = []
    for i in range(len(dataset)):
        item = dataset[i]
        rgb = F.adaptive_avg_pool2d(item["rgb"][None], size)
        opaque = F.adaptive_avg_pool2d(item["alpha"][None], size).flatten() > 0.5
        ab = normalize_lab(rgb_to_lab(rgb))[1]
        colours.append(ab.flatten(2)[0].T[opaque])
    return ColourRarity.from_ab(torch.cat(colours))


def load_colorization(run_dir: Path, stage_name: str, config: GCPConfig,
                      device: torch.device) -> tuple[dict[str, dict], dict]:
    """The trained networks' state dicts of a stage-2 or ablation run (their EMA when the
    run keeps one), and its options."""
    checkpoint = stage_checkpoint(run_dir, stage_name, config, f"no {stage_name} run in {run_dir}: "
                                  f"run `gcp-colorize train {stage_name}` first", device)
    stage = checkpoint["stage"]
    if "ema" in stage:
        averaged = stage["ema"]["model"]
        return ({name: {key.partition(".")[2]: value for key, value in averaged.items()
                        if key.partition(".")[0] == name} for name in trained_networks(config)},
                checkpoint["options"])
    return {name: stage[name] for name in trained_networks(config)}, checkpoint["options"]
