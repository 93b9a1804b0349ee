"""`gcp-colorize train` options reach the stage they configure (no training here)."""

import inspect
import json

from gcp_colorize import cli
from gcp_colorize.training import commands, stage0_prior, stage2_colorization


class RecordedStage:
    """Stands in for a stage class: keeps the keyword arguments it was built with."""

    def __init__(self, config, device, **options):
        self.options = options


def built_with(monkeypatch, argv):
    monkeypatch.setattr(stage0_prior, "GANPriorStage", RecordedStage)
    monkeypatch.setattr(stage2_colorization, "ColorizationStage", RecordedStage)
    args = cli.build_parser().parse_args(argv)
    return commands.build_stage(args, config=None, device="cpu").options


def test_learning_rates_reach_stage2_and_the_ablation(monkeypatch):
    for stage in ("stage2", "ablation"):
        options = built_with(monkeypatch, ["train", stage, "--lr", "1e-5", "--d-lr", "3e-5"])
        assert (options["lr"], options["d_lr"]) == (1e-5, 3e-5)


def test_learning_rates_default_to_the_stage_defaults(monkeypatch):
    defaults = inspect.signature(stage2_colorization.ColorizationStage).parameters
    options = built_with(monkeypatch, ["train", "stage2"])
    assert (options["lr"], options["d_lr"]) == (defaults["lr"].default, defaults["d_lr"].default)


def test_learning_rates_and_colour_augmentation_reach_stage0(monkeypatch):
    defaults = inspect.signature(stage0_prior.GANPriorStage).parameters
    options = built_with(monkeypatch, ["train", "stage0", "--lr", "1e-5", "--d-lr", "3e-4"])
    assert (options["g_lr"], options["d_lr"]) == (1e-5, 3e-4)
    options = built_with(monkeypatch, ["train", "stage0"])
    assert (options["g_lr"], options["d_lr"]) == (defaults["g_lr"].default,
                                                  defaults["d_lr"].default)
    assert options["colour_augment"] is False
    assert built_with(monkeypatch, ["train", "stage0", "--colour-augment"])["colour_augment"] is True


def test_weights_to_fine_tune_and_the_average_reach_the_stage(monkeypatch, tmp_path):
    options = built_with(monkeypatch, ["train", "stage2", "--from-weights", str(tmp_path),
                                       "--ema", "0.995"])
    assert (options["from_weights"], options["ema_decay"]) == (tmp_path, 0.995)
    options = built_with(monkeypatch, ["train", "ablation"])
    assert (options["from_weights"], options["ema_decay"]) == (None, None)


def test_bf16_reaches_the_training_loop_for_every_stage(monkeypatch, tmp_path):
    from gcp_colorize.training import loop

    calls = []
    monkeypatch.setattr(loop, "train", lambda stage, run_dir, budget, **kw: calls.append(kw))
    monkeypatch.setattr(stage0_prior, "GANPriorStage", RecordedStage)
    for flags in (["--bf16"], []):
        argv = ["train", "stage0", "--run-dir", str(tmp_path), "--steps", "1", *flags]
        args = cli.build_parser().parse_args(argv)
        assert commands.run_stage(args) == 0
    assert [kw["bf16"] for kw in calls] == [True, False]


def test_the_config_defaults_to_that_of_the_weights_or_run_a_command_goes_on_from(tmp_path):
    from gcp_colorize.model.config import CONFIGS
    from gcp_colorize.training.run_state import save_checkpoint
    from gcp_colorize.weights import CONFIG_FILE

    def implied(*argv):
        return commands.implied_config(cli.build_parser().parse_args(["train", *argv]))

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / CONFIG_FILE).write_text(json.dumps(CONFIGS["small-semantic"].to_dict()))
    nowhere = str(tmp_path / "nowhere")
    fresh = ["--run-dir", nowhere, "--prior-run", nowhere]
    assert implied("stage2", *fresh, "--from-weights", str(weights)) == "small-semantic"
    assert implied("stage2", *fresh) == commands.DEFAULT_CONFIG
    assert implied("stage2", *fresh, "--from-weights", nowhere) == commands.DEFAULT_CONFIG
    run = tmp_path / "run"
    save_checkpoint(run, {"options": {"stage": "stage2", "config": CONFIGS["tiny"].to_dict()}})
    # the run being resumed or exported comes before anything else
    assert implied("stage2", "--run-dir", str(run), "--from-weights", str(weights)) == "tiny"
    assert implied("export", "--out", nowhere, "--colorization-run", str(run),
                   "--prior-run", nowhere) == "tiny"
    assert implied("export", "--out", nowhere, "--ablation", "--ablation-run", nowhere,
                   "--colorization-run", str(run), "--prior-run", nowhere) == commands.DEFAULT_CONFIG
    assert implied("stage1", *fresh[:2], "--prior-run", str(run)) == "tiny"
    assert cli.build_parser().parse_args(["train", "stage0", "--config", "tiny"]).config == "tiny"
