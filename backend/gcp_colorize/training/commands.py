"""`gcp-colorize train ...`: the training stages, latent directions and weights export.

    train stage0     the GAN colour prior (BigGAN G and D)          needs: data prepare
    train stage1     the GAN encoder E, G frozen                    needs: stage0
    train stage2     correspondence + colorization nets             needs: stage0, stage1
    train ablation   colorization net without the GAN prior         needs: data prepare
    train export     weights directory from the runs (+ directions) needs: the above
    train average    average of two fine-tuned weights directories  needs: two exports
    train score-prior  FID, KID, colour and z-spread of G's samples needs: stage0

Each stage keeps its run state in a run directory outside the repository (default
~/.cache/gcp-colorize/train/<stage>); running the same command again resumes exactly
where it stopped (kill it any time); a larger --steps/--hours extends a run. Without
--config, a command takes the config of what it goes on from (the run it resumes or
exports, --init-from, --from-weights, the stage-0 run), else small.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..argument_types import positive_int
from .loss_weights import LOSS_NAMES, loss_weights

TRAIN_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gcp-colorize" / "train"
STAGES = ("stage0", "stage1", "stage2", "ablation")
DEFAULT_CONFIG = "small"
CONFIG_HELP = (f"model configuration (default: that of the weights or run it goes on from, "
               f"else {DEFAULT_CONFIG})")


def default_run_dir(stage: str) -> Path:
    return TRAIN_ROOT / stage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train the project's own GCP weights (stages 0-2, ablation, export)",
        description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="train_command", metavar="STAGE", required=True)
    helps = {"stage0": "class-conditional BigGAN G and D (the colour prior)",
             "stage1": "GAN encoder E with G frozen",
             "stage2": "correspondence and colorization networks with E, G frozen",
             "ablation": "colorization network without GAN prior features"}
    for stage in STAGES:
        p = actions.add_parser(stage, help=helps[stage], description=helps[stage])
        p.add_argument("--run-dir", type=Path, default=default_run_dir(stage),
                       help=f"run state directory (default {default_run_dir(stage)})")
        p.add_argument("--steps", type=positive_int, help="total number of steps of the run")
        p.add_argument("--hours", type=float, help="total training hours of the run")
        p.add_argument("--seed", type=int, default=0, help="seed of a new run (default 0)")
        p.add_argument("--batch-size", type=positive_int, help="images per step (stage default)")
        p.add_argument("--config", help=CONFIG_HELP)
        _add_machine_flags(p)
        p.add_argument("--checkpoint-minutes", type=float, default=10.0,
                       help="minutes between checkpoints (default 10)")
        p.add_argument("--bf16", action="store_true",
                       help="run the steps under a bfloat16 autocast: faster on CPUs with "
                            "AVX512-BF16 or AMX and on CUDA, slower elsewhere (a speed "
                            "choice like --threads: a run may switch when it resumes)")
        if stage in ("stage0", "stage2", "ablation"):
            p.add_argument("--init-from", type=Path,
                           help="start a new run from the networks of another run of this "
                                "stage (to go on with other options: loss weights, batch "
                                "size, learning rates); optimisers and step start afresh")
        if stage == "stage0":
            p.add_argument("--lr", type=float, default=5e-5,
                           help="learning rate of G (default 5e-5, a quarter of D's)")
            p.add_argument("--d-lr", type=float, default=2e-4,
                           help="learning rate of D (default 2e-4)")
            p.add_argument("--colour-augment", action="store_true",
                           help="also jitter brightness, saturation and contrast of every image D "
                                "sees (real and generated alike)")
        if stage in ("stage1", "stage2"):
            p.add_argument("--prior-run", type=Path, default=default_run_dir("stage0"),
                           help="the stage-0 run directory")
        if stage in ("stage2", "ablation"):
            p.add_argument("--loss-weight", action="append", default=[], metavar="NAME=VALUE",
                           help=f"override a loss weight ({', '.join(LOSS_NAMES)}); "
                                "repeatable")
            p.add_argument("--lr", type=float, default=1e-4,
                           help="learning rate of the trained nets (default 1e-4; lower it to "
                                "fine-tune a warm start without leaving it)")
            p.add_argument("--d-lr", type=float, default=2e-4,
                           help="learning rate of the PatchGAN (default 2e-4)")
            p.add_argument("--from-weights", type=Path, metavar="DIR",
                           help="start from every network of a weights directory (e.g. "
                                "weights/default): no stage-0/1 runs needed; the PatchGAN "
                                "starts afresh")
            p.add_argument("--ema", type=float, metavar="DECAY",
                           help="keep an EMA of the trained nets (e.g. 0.999); export takes it")
        if stage == "stage2":
            p.add_argument("--init-from-ablation", type=Path,
                           help="start the colorization net (and PatchGAN) from an ablation "
                                "run, the prior's inputs zeroed: the full model starts as the "
                                "ablation and learns to use the prior (with --init-from, the "
                                "correspondence comes from that stage-2 run)")
            p.add_argument("--no-reference-palette", dest="reference_palette",
                           action="store_false",
                           help="no palette loss for samples with a shifted z (by default it "
                                "pulls them towards their GAN reference's palette, which a "
                                "weak prior draws as colour blobs)")
            p.add_argument("--encoder-run", type=Path, default=default_run_dir("stage1"),
                           help="the stage-1 run directory")
        p.set_defaults(func=run_stage, stage=stage)

    p = actions.add_parser(
        "export", help="write the trained networks as a weights directory",
        description="Write a weights directory (config.json, one tensor file per network, "
                    "named latent directions, training.json) from the stage runs; with "
                    "--ablation, the no-prior ablation from its run.")
    p.add_argument("--out", type=Path, required=True, help="weights directory to write")
    p.add_argument("--ablation", action="store_true", help="export the ablation run instead")
    p.add_argument("--prior-run", type=Path, default=default_run_dir("stage0"))
    p.add_argument("--encoder-run", type=Path, default=default_run_dir("stage1"))
    p.add_argument("--colorization-run", type=Path, default=default_run_dir("stage2"))
    p.add_argument("--ablation-run", type=Path, default=default_run_dir("ablation"))
    p.add_argument("--config", help=CONFIG_HELP)
    _add_machine_flags(p)
    p.set_defaults(func=run_export)

    p = actions.add_parser(
        "average", help="average the fine-tuned nets of two weights directories",
        description="Write a weights directory whose correspondence and colorization nets are "
                    "(1 - ratio) * FIRST + ratio * SECOND, with latent directions measured on "
                    "it. Both must share every other network (fine-tuned from the same "
                    "weights, e.g. with `train stage2 --from-weights`).")
    p.add_argument("first", type=Path, help="weights directory")
    p.add_argument("second", type=Path, help="weights directory")
    p.add_argument("--ratio", type=float, default=0.5, help="weight of SECOND (default 0.5)")
    p.add_argument("--out", type=Path, required=True, help="weights directory to write")
    _add_machine_flags(p)
    p.set_defaults(func=run_average)

    p = actions.add_parser(
        "score-prior", help="FID, KID, colourfulness and z-spread of a stage-0 run's samples",
        description="Score the colour prior of a stage-0 run (its current checkpoint): one G "
                    "sample per training photo (fixed views and seed) against the photos. "
                    "FID and KID (Inception), colourfulness as a fraction of the photos', and "
                    "z-spread (mean CIEDE2000 between two samples of one class, 16 px "
                    "thumbnails). Compare runs and checkpoints at equal --count.")
    p.add_argument("--prior-run", type=Path, default=default_run_dir("stage0"))
    p.add_argument("--count", type=positive_int, default=256, help="photos and samples (default 256)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the samples' z (default 0); another seed shows the scores' noise")
    p.add_argument("--config", help=CONFIG_HELP)
    _add_machine_flags(p)
    p.set_defaults(func=run_score_prior)


def _add_machine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: all cores)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")


def _with_config(args: argparse.Namespace, command: str, body, errors=()) -> int:
    """Run body(config, device) for the --config/--device/--threads flags; an unknown
    config returns 2, a FileNotFoundError or ValueError (or one of `errors`) is printed
    as "train COMMAND: ..." and returns 1."""
    from ..model.config import CONFIGS

    name = args.config or implied_config(args)
    if name not in CONFIGS:
        print(f"unknown config {name!r}; known: {', '.join(CONFIGS)}", file=sys.stderr)
        return 2
    try:
        return body(CONFIGS[name], _device(args))
    except (FileNotFoundError, ValueError, *errors) as exc:
        print(f"train {command}: {exc}", file=sys.stderr)
        return 1


def implied_config(args: argparse.Namespace) -> str:
    """The config of the first source the command has that exists: the run it resumes,
    --init-from(-ablation), --from-weights, the run it exports, the stage-0 run; else
    small. (Any other source of another config stops the command with a mismatch.)"""
    from ..weights import WeightsError, read_config
    from .run_state import saved_config_name

    exported = "ablation_run" if getattr(args, "ablation", False) else "colorization_run"
    for option in ("run_dir", "init_from", "init_from_ablation", "from_weights", exported,
                   "prior_run"):
        source = getattr(args, option, None)
        if source is None:
            continue
        source = source.expanduser()
        if option == "from_weights":
            try:
                return read_config(source).name
            except WeightsError:
                continue  # the stage says what is wrong with the directory
        name = saved_config_name(source)
        if name:
            return name
    return DEFAULT_CONFIG


def _device(args: argparse.Namespace):
    """The torch device of --device (CUDA when present by default), after --threads."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def run_stage(args: argparse.Namespace) -> int:
    from .loop import Budget, train
    from .run_state import seed_everything

    try:
        budget = Budget(steps=args.steps, hours=args.hours)
    except ValueError as exc:
        print(f"train {args.stage}: {exc} (--steps N and/or --hours H)", file=sys.stderr)
        return 2

    def run(config, device) -> int:
        seed_everything(args.seed)
        stage = build_stage(args, config, device)
        train(stage, args.run_dir.expanduser(), budget, seed=args.seed,
              checkpoint_every_s=60 * args.checkpoint_minutes, bf16=args.bf16)
        return 0

    return _with_config(args, args.stage, run, errors=(RuntimeError,))


def run_export(args: argparse.Namespace) -> int:
    from .export import export_ablation, export_full

    out = args.out.expanduser()

    def export(config, device) -> int:
        if args.ablation:
            record = export_ablation(out, config, device, ablation_run=args.ablation_run.expanduser())
        else:
            record = export_full(out, config, device, prior_run=args.prior_run.expanduser(),
                                 encoder_run=args.encoder_run.expanduser(),
                                 colorization_run=args.colorization_run.expanduser(),
                                 **_direction_photos(config.resolution))
        return _report(record, out)

    return _with_config(args, "export", export)


def run_average(args: argparse.Namespace) -> int:
    from ..weights import WeightsError, read_config
    from .export import export_average

    device = _device(args)
    out, first = args.out.expanduser(), args.first.expanduser()
    try:
        record = export_average(out, first, args.second.expanduser(), args.ratio, device,
                                **_direction_photos(read_config(first).resolution))
    except (FileNotFoundError, ValueError, WeightsError) as exc:
        print(f"train average: {exc}", file=sys.stderr)
        return 1
    return _report(record, out)


def run_score_prior(args: argparse.Namespace) -> int:
    from .photos import training_set
    from .prior_score import score_prior

    run = args.prior_run.expanduser()

    def score_run(config, device) -> int:
        score = score_prior(run, config, device, training_set(config.resolution, seed=0),
                            count=args.count, seed=args.seed)
        print(f"{run} step {score['step']}, {score['count']} samples (seed {args.seed}): FID {score['fid']:.1f}, "
              f"KID x1000 {1000 * score['kid']:.2f}, colourfulness "
              f"{score['colourfulness']:.0%} of the photos', z-spread "
              f"{score['z_spread']:.2f} CIEDE2000")
        return 0

    return _with_config(args, "score-prior", score_run)


def _direction_photos(resolution: int) -> dict:
    """The photo sets every export measures latent directions with: the training set (its
    classes) and the fixed validation split, both as seed 0 makes them."""
    from .photos import training_set

    return {"train_set": training_set(resolution, seed=0),
            "val_set": training_set(resolution, seed=0, split="val")}


def _report(record: dict, out: Path) -> int:
    for stage, run in record["runs"].items():
        print(f"{stage}: step {run['step']}, {run['hours']} h, {run['run_dir']}")
    for direction in record.get("directions", []):
        print(f"direction {direction['name']!r}: {direction['effect_per_unit']}")
    print(f"wrote {out}")
    return 0


def build_stage(args: argparse.Namespace, config, device):
    batch = {"batch_size": args.batch_size} if args.batch_size else {}
    if args.stage == "stage0":
        from .stage0_prior import GANPriorStage
        return GANPriorStage(config, device, seed=args.seed, g_lr=args.lr, d_lr=args.d_lr,
                             colour_augment=args.colour_augment,
                             init_from=args.init_from and args.init_from.expanduser(), **batch)
    if args.stage == "stage1":
        from .stage1_encoder import EncoderStage
        return EncoderStage(config, device, seed=args.seed, prior_run=args.prior_run.expanduser(),
                            **batch)
    from .stage2_colorization import ColorizationStage
    weights = loss_weights(args.loss_weight)
    rates = {"lr": args.lr, "d_lr": args.d_lr, "ema_decay": args.ema,
             "from_weights": args.from_weights.expanduser() if args.from_weights else None}
    init_from = args.init_from.expanduser() if args.init_from else None
    if args.stage == "stage2":
        from_ablation = args.init_from_ablation.expanduser() if args.init_from_ablation else None
        return ColorizationStage(config, device, seed=args.seed, **batch, **rates, weights=weights,
                                 prior_run=args.prior_run.expanduser(),
                                 encoder_run=args.encoder_run.expanduser(),
                                 init_from=init_from, init_from_ablation=from_ablation,
                                 reference_palette=args.reference_palette)
    return ColorizationStage(config, device, seed=args.seed, use_prior=False, **batch, **rates,
                             weights=weights, init_from=init_from)
