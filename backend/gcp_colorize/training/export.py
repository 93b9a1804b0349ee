"""Export the trained networks of the stage runs as a weights directory (weights.py format).

The full model: G (the EMA generator with its standing statistics, exactly as stages 1
and 2 saw it) and D's feature blocks from stage 0, E from stage 1, the correspondence and
colorization nets from stage 2, and the named latent directions (see `directions`); a
stage-2 run that fine-tuned a weights directory (`from_weights`) takes its frozen networks
from that directory, and its record extends that directory's. The
ablation: its colorization net alone, in a config with `gan_prior` off. An average: the
trained nets of two weights directories fine-tuned from the same frozen networks,
interpolated (a "model soup": on this project's runs such averages had lower FID and KID
than either half). Beside the tensors, `training.json` records each run's steps,
hours and options, and the measured effect of each direction (the model card quotes it).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from .. import weights
from ..model.config import GCPConfig
from ..model.gcp import GCPModel
from ..model.lab import rgb_to_model_input
from .directions import MeasuredDirection, as_named, discover, named_directions
from .photos import sample_crops, top_classes
from .run_state import load_checkpoint
from .stage0_prior import load_prior
from .stage1_encoder import load_encoder, photo_classes
from .stage2_colorization import load_colorization, read_weights_for, trained_networks

TRAINING_RECORD = "training.json"
DIRECTION_AMOUNT = 4.0   # walk used to measure a direction (z ~ N(0, I) per dimension)
DIRECTION_CANDIDATES = 10
DIRECTIONS_KEPT = 4
MEASURE_PHOTOS = 24


def run_record(run_dir: Path) -> dict:
    """Steps, hours and options of a run (from its checkpoint)."""
    checkpoint = load_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"no training run in {run_dir}")
    return {"run_dir": str(Path(run_dir).resolve()), "step": checkpoint["step"],
            "hours": round(checkpoint["seconds"] / 3600, 3), "options": checkpoint["options"]}


def full_model(config: GCPConfig, device: torch.device, prior_run: Path, encoder_run: Path,
               colorization_run: Path, classes: torch.Tensor) -> GCPModel:
    """The GCPModel of the three runs, checked to be one chain (stage 2 trained on this E,
    E on this G); `classes` are the training set's, for G's standing statistics. A stage-2
    run from a weights directory needs neither stage-0 nor stage-1 run."""
    networks, options = load_colorization(colorization_run, "stage2", config, device)
    if "from_weights" in options:
        model = read_weights_for(Path(options["from_weights"]), config).to(device)
        for name, state in networks.items():
            getattr(model, name).load_state_dict(state)
        return model.eval().requires_grad_(False)
    generator, discriminator, prior_step = load_prior(prior_run, config, device, classes)
    encoder, encoder_options = load_encoder(encoder_run, config, device)
    chain = (str(Path(prior_run).resolve()), prior_step, str(Path(encoder_run).resolve()))
    if (options["prior_run"], options["prior_step"], options["encoder_run"]) != chain or \
            encoder_options["prior_step"] != prior_step:
        raise ValueError(f"the runs are not one chain: stage 2 used prior {options['prior_run']} "
                         f"step {options['prior_step']} and encoder {options['encoder_run']}; "
                         f"given prior {prior_run} at step {prior_step}, encoder {encoder_run}")
    model = GCPModel(config).to(device)
    model.generator.load_state_dict(generator.state_dict())
    model.discriminator_features.load_state_dict(discriminator.feature_net().state_dict())
    model.encoder.load_state_dict(encoder.state_dict())
    for name, state in networks.items():
        getattr(model, name).load_state_dict(state)
    return model.eval().requires_grad_(False)


def ablation_model(config: GCPConfig, device: torch.device, ablation_run: Path) -> GCPModel:
    config = dataclasses.replace(config, gan_prior=False)
    networks, _ = load_colorization(ablation_run, "ablation", config, device)
    model = GCPModel(config).to(device)
    model.colorization.load_state_dict(networks["colorization"])
    return model.eval().requires_grad_(False)


def measure_directions(model: GCPModel, classes: torch.Tensor, val_set, device: torch.device,
                       log=print) -> list[MeasuredDirection]:
    """Discover the latent directions of `model` (G sampled over `classes`) and keep the
    strongest named ones, measured on `val_set` (the validation photos)."""
    from ..model.classifier import ImageNetClassifier

    log("discovering latent directions (PCA of G's features)")
    candidates = discover(model, classes, count=DIRECTION_CANDIDATES)
    x_l = rgb_to_model_input(sample_crops(val_set, MEASURE_PHOTOS).to(device))
    classifier = ImageNetClassifier(device)
    logits, semantic = model.read_gray(classifier, x_l)
    log(f"measuring {len(candidates)} directions on {x_l.size(0)} validation photos")
    return named_directions(model, x_l, top_classes(logits, model.config.n_classes), candidates,
                            DIRECTION_AMOUNT, keep=DIRECTIONS_KEPT, semantic=semantic)


def average_model(first: Path, second: Path, ratio: float, device: torch.device) -> GCPModel:
    """(1 - ratio) * first + ratio * second for the nets stage 2 trains; every other
    network must be the same in both (they were fine-tuned from the same weights)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"the ratio must be in [0, 1], got {ratio}")
    model, other = (weights.read_model(Path(d)).to(device) for d in (first, second))
    if model.config != other.config:
        raise ValueError(f"{first} and {second} have different configs")
    trained = trained_networks(model.config)
    for name, module in model.named_children():
        ours, theirs = module.state_dict(), getattr(other, name).state_dict()
        if name not in trained:
            if any(not torch.equal(value, theirs[key]) for key, value in ours.items()):
                raise ValueError(f"the {name} of {first} and {second} differ: only weights "
                                 f"fine-tuned from the same frozen networks can be averaged")
            continue
        module.load_state_dict({key: torch.lerp(value, theirs[key], ratio)
                                if value.is_floating_point() else value
                                for key, value in ours.items()})
    return model.eval().requires_grad_(False)


def export_average(out: Path, first: Path, second: Path, ratio: float, device: torch.device, *,
                   train_set, val_set, log=print) -> dict:
    """Write the average of two weights directories (see `average_model`) with directions
    measured on it. Its record keeps both sources' records; its `runs` are the first's
    (where a later fine-tune finds stages 0 and 1)."""
    model = average_model(first, second, ratio, device)
    chosen = measure_directions(model, photo_classes(train_set), val_set, device, log)
    weights.save_model(model, out, as_named(chosen))
    sources = [{"weights": str(Path(d).resolve()),
                "record": json.loads((Path(d) / TRAINING_RECORD).read_text())}
               for d in (first, second)]
    return _write_record(out, model.config.name, runs=sources[0]["record"]["runs"],
                         averaged={"ratio_of_second": ratio, "of": sources},
                         directions=[d.summary() for d in chosen])


def export_full(out: Path, config: GCPConfig, device: torch.device, *, prior_run: Path,
                encoder_run: Path, colorization_run: Path, train_set, val_set,
                log=print) -> dict:
    """Write the full model and its directions to `out`; returns the training record.
    The directions are measured on `val_set` (the validation photos)."""
    classes = photo_classes(train_set)
    model = full_model(config, device, prior_run, encoder_run, colorization_run, classes)
    chosen = measure_directions(model, classes, val_set, device, log)
    weights.save_model(model, out, as_named(chosen))
    stage2 = run_record(colorization_run)
    source = stage2["options"].get("from_weights")
    origin = {}
    if source:  # stages 0 and 1 are the source directory's; its whole record is kept (it may be an average)
        earlier = json.loads((Path(source) / TRAINING_RECORD).read_text())
        runs = {"stage0": earlier["runs"]["stage0"], "stage1": earlier["runs"]["stage1"], "stage2": stage2}
        origin = {"fine_tuned_from": {"weights": source, "record": earlier}}
    else:
        runs = {"stage0": run_record(prior_run), "stage1": run_record(encoder_run),
                "stage2": stage2}
    return _write_record(out, config.name, runs=runs,
                         directions=[d.summary() for d in chosen], **origin)


def export_ablation(out: Path, config: GCPConfig, device: torch.device, *,
                    ablation_run: Path) -> dict:
    model = ablation_model(config, device, ablation_run)
    weights.save_model(model, out)
    return _write_record(out, model.config.name, gan_prior=False,
                         runs={"ablation": run_record(ablation_run)})


def _write_record(out: Path, config_name: str, **fields) -> dict:
    """Stamp the export time and config on `fields`, write them as the training record."""
    record = {"exported": time.strftime("%Y-%m-%d %H:%M:%S"), "config": config_name, **fields}
    (Path(out) / TRAINING_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return record
