"""The training stages end to end on a tiny 64-px config and synthetic photos: every stage
trains and resumes exactly, the chain of runs is checked, and the export is a weights
directory that the weights store loads (full model with named directions; ablation)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gcp_colorize import weights
from gcp_colorize.model.config import GCPConfig
from gcp_colorize.model.gcp import GCPModel
from gcp_colorize.training import run_state
from gcp_colorize.training.class_embedding import semantic_class_table
from gcp_colorize.training.export import (TRAINING_RECORD, export_ablation, export_average,
                                          export_full)
from gcp_colorize.training.loop import Budget, train
from gcp_colorize.training.stage0_prior import GANPriorStage, load_prior
from gcp_colorize.training.stage1_encoder import EncoderStage
from gcp_colorize.training.stage2_colorization import ColorizationStage
from synthetic_photos import SyntheticPhotos

pytestmark = pytest.mark.slow  # a few real (tiny) networks per stage: about a minute

CONFIG = GCPConfig(name="test64", resolution=64, n_classes=10, dim_z=120, shared_dim=16,
                   g_ch=2, d_ch=4, e_ch=4, attention_resolution=16, corr_nonlocal_nc=8,
                   color_ngf=4, color_res_blocks=1)
CPU = torch.device("cpu")


def photos(**options) -> SyntheticPhotos:
    """Synthetic training photos labelled with the test config's classes."""
    return SyntheticPhotos(n_classes=CONFIG.n_classes, **options)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two steps of every stage, chained as the command line chains them."""
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("runs")
    data = {"dataset": photos(), "sample_set": photos(n=3, seed=1)}
    run_state.seed_everything(0)
    train(GANPriorStage(CONFIG, CPU, seed=0, batch_size=2, **data), root / "stage0",
          Budget(steps=2), seed=0)
    run_state.seed_everything(0)
    train(EncoderStage(CONFIG, CPU, seed=0, batch_size=2, prior_run=root / "stage0", **data),
          root / "stage1", Budget(steps=2), seed=0)
    run_state.seed_everything(0)
    train(ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, prior_run=root / "stage0",
                            encoder_run=root / "stage1", **data), root / "stage2",
          Budget(steps=2), seed=0)
    run_state.seed_everything(0)
    train(ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, use_prior=False, **data),
          root / "ablation", Budget(steps=2), seed=0)
    return root, data


def export_runs(runs, out):
    """The full model of the fixture's runs exported to `out`."""
    root, data = runs
    export_full(out, CONFIG, CPU, prior_run=root / "stage0", encoder_run=root / "stage1",
                colorization_run=root / "stage2", train_set=data["dataset"],
                val_set=data["sample_set"], log=lambda message: None)


def test_every_stage_writes_a_checkpoint_samples_and_a_log(runs):
    root, _ = runs
    for stage in ("stage0", "stage1", "stage2", "ablation"):
        state = run_state.load_checkpoint(root / stage)
        assert state["step"] == 2 and state["options"]["stage"] == stage
        assert list((root / stage / "samples").glob("*.png"))
        assert "budget spent" in (root / stage / "train.log").read_text()


def test_stage0_prior_is_frozen_with_a_semantic_class_embedding(runs):
    root, data = runs
    generator, discriminator, step = load_prior(root / "stage0", CONFIG, CPU,
                                                torch.tensor(data["dataset"].labels))
    assert step == 2
    assert not any(p.requires_grad for p in generator.parameters())
    assert not generator.training and not discriminator.training
    # the classifier's class weights, projected: frozen through training
    assert torch.equal(generator.shared.weight, semantic_class_table(16, CONFIG.n_classes))


def test_a_fresh_stage0_starts_from_orthogonal_weights():
    """BigGAN's init: each conv / linear / embedding weight, as a matrix, has orthonormal rows
    or columns; G's frozen semantic class table is not touched."""
    stage = GANPriorStage(CONFIG, CPU, seed=0, batch_size=2, dataset=photos(), sample_set=photos(n=3, seed=1))
    checked = 0
    for network in (stage.generator, stage.discriminator):
        for module in network.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding)) \
                    and module.weight.requires_grad:
                w = module.weight.detach().flatten(1)
                gram = w @ w.T if w.size(0) <= w.size(1) else w.T @ w
                assert torch.allclose(gram, torch.eye(gram.size(0)), atol=1e-4), module
                checked += 1
    assert checked > 20
    assert torch.equal(stage.generator.shared.weight, semantic_class_table(16, CONFIG.n_classes))


def test_stage0_goes_on_from_another_run_with_other_options(runs):
    root, data = runs
    source = run_state.load_checkpoint(root / "stage0")["stage"]
    stage = GANPriorStage(CONFIG, CPU, seed=0, batch_size=4, init_from=root / "stage0", **data)
    for name in ("generator", "discriminator"):
        for key, value in getattr(stage, name).state_dict().items():
            assert torch.equal(value, source[name][key]), (name, key)
    assert torch.equal(stage.ema.model.shared.weight, source["ema"]["model"]["shared.weight"])
    assert stage.options()["init_from"] == str((root / "stage0").resolve())
    assert (stage.options()["init_step"], stage.options()["batch_size"]) == (2, 4)


def test_every_stage_steps_under_a_bf16_autocast(runs, tmp_path):
    """`train ... --bf16`: each stage's step runs (the loop stops on a non-finite loss)."""
    root, data = runs
    chain = {"prior_run": root / "stage0", "encoder_run": root / "stage1"}
    stages = [GANPriorStage(CONFIG, CPU, seed=0, batch_size=2, **data),
              EncoderStage(CONFIG, CPU, seed=0, batch_size=2, prior_run=root / "stage0", **data),
              ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, **chain, **data)]
    for stage in stages:
        assert train(stage, tmp_path / stage.name, Budget(steps=1), seed=0, bf16=True) == 1


def test_stage0_augments_samples_in_fp32_like_the_photos_under_bf16(monkeypatch):
    """Under a bf16 autocast G's images are bf16; D's augmentation must see them in fp32, as
    it sees the photos, or its colour jitter rounds the samples alone."""
    from gcp_colorize.training import stage0_prior
    stage = GANPriorStage(CONFIG, CPU, seed=0, batch_size=2, colour_augment=True, dataset=photos(),
                          sample_set=photos(n=3, seed=1))
    seen = []
    real_augment = stage0_prior.diff_augment

    def recording_augment(x, colour=False):
        seen.append(x.dtype)
        return real_augment(x, colour)
    monkeypatch.setattr(stage0_prior, "diff_augment", recording_augment)
    batch = next(iter(torch.utils.data.DataLoader(stage.dataset, batch_size=2)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stage.train_step(batch, 0)
    assert seen == [torch.float32] * 3  # photos, samples for D, samples for G


def test_score_prior_measures_the_samples_against_the_photos(runs):
    from gcp_colorize.training.prior_score import score_prior, z_spread
    root, data = runs
    score = score_prior(root / "stage0", CONFIG, CPU, data["dataset"], count=4,
                        log=lambda message: None)
    assert (score["step"], score["count"]) == (2, 4)
    assert score["fid"] > 0 and score["colourfulness"] > 0 and score["z_spread"] > 0
    again = score_prior(root / "stage0", CONFIG, CPU, data["dataset"], count=4,
                        log=lambda message: None)
    assert again == score  # fixed views and seed: checkpoints are compared like for like
    images = data["dataset"].images[:3]
    assert z_spread(images, images) == 0
    assert z_spread(images, images.flip(0)) > 1


def test_stage2_resumes_exactly(runs, tmp_path):
    root, data = runs

    def stage():
        return ColorizationStage(CONFIG, CPU, seed=3, batch_size=2, prior_run=root / "stage0",
                                 encoder_run=root / "stage1", **data)

    run_state.seed_everything(3)
    straight = stage()
    train(straight, tmp_path / "a", Budget(steps=3), seed=3)
    run_state.seed_everything(3)
    train(stage(), tmp_path / "b", Budget(steps=1), seed=3)
    run_state.seed_everything(99)
    resumed = stage()
    train(resumed, tmp_path / "b", Budget(steps=3), seed=3)
    for name in ("correspondence", "colorization"):
        a = getattr(straight.model, name).state_dict()
        b = getattr(resumed.model, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_stage2_refuses_an_encoder_trained_on_another_prior(runs, tmp_path):
    root, data = runs
    run_state.seed_everything(0)
    train(GANPriorStage(CONFIG, CPU, seed=0, batch_size=2, **data), tmp_path / "other0",
          Budget(steps=1), seed=0)
    with pytest.raises(ValueError, match="train stage1 again"):
        ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, prior_run=tmp_path / "other0",
                          encoder_run=root / "stage1", **data)


def test_a_missing_prior_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train stage0"):
        EncoderStage(CONFIG, CPU, seed=0, prior_run=tmp_path / "none",
                     dataset=photos(), sample_set=photos(n=2))


def test_export_writes_a_loadable_weights_directory_with_named_directions(runs, tmp_path):
    root, data = runs
    out = tmp_path / "weights"
    record = export_full(out, CONFIG, CPU, prior_run=root / "stage0", encoder_run=root / "stage1",
                         colorization_run=root / "stage2", train_set=data["dataset"],
                         val_set=data["sample_set"], log=lambda message: None)
    loaded = weights.load(str(out), device="cpu")
    assert loaded.config == CONFIG
    names = loaded.directions.names
    assert 1 <= len(names) <= 4 and len(set(names)) == len(names)
    assert all(any(q in n for q in ("saturation", "warmth", "tint")) for n in names)
    norms = loaded.directions.vectors.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    on_disk = json.loads((out / TRAINING_RECORD).read_text())
    assert on_disk["runs"]["stage2"]["step"] == 2 == record["runs"]["stage0"]["step"]
    assert [d["name"] for d in on_disk["directions"]] == names
    x_l = torch.zeros(1, 1, 64, 64)
    ab = loaded.model(x_l, torch.tensor([3]))
    assert ab.shape == (1, 2, 64, 64) and torch.isfinite(ab).all()


def test_average_interpolates_the_fine_tuned_nets_of_two_weights_directories(runs, tmp_path):
    root, data = runs
    first, second = tmp_path / "first", tmp_path / "second"
    export_runs(runs, first)
    export_runs(runs, second)
    changed = weights.read_model(second)
    with torch.no_grad():
        for param in changed.colorization.parameters():
            param.add_(1.0)
    weights.save_model(changed, second, weights.read_directions(second))
    record = export_average(tmp_path / "mix", first, second, 0.25, CPU,
                            train_set=data["dataset"], val_set=data["sample_set"],
                            log=lambda message: None)
    mix, a = weights.read_model(tmp_path / "mix"), weights.read_model(first)
    for name, value in mix.colorization.state_dict().items():
        if value.is_floating_point() and name in dict(mix.colorization.named_parameters()):
            assert torch.allclose(value, a.colorization.state_dict()[name] + 0.25, atol=1e-6)
    assert all(torch.equal(value, a.encoder.state_dict()[key])
               for key, value in mix.encoder.state_dict().items())
    on_disk = json.loads((tmp_path / "mix" / TRAINING_RECORD).read_text())
    assert on_disk["averaged"]["ratio_of_second"] == 0.25 == record["averaged"]["ratio_of_second"]
    assert [source["weights"] for source in on_disk["averaged"]["of"]] == [
        str(first.resolve()), str(second.resolve())]
    assert on_disk["runs"]["stage2"]["step"] == 2 and on_disk["directions"]
    assert weights.read_directions(tmp_path / "mix") is not None

    # a different frozen network (here E) means the two were not fine-tuned from one start
    with torch.no_grad():
        next(changed.encoder.parameters()).add_(1.0)
    weights.save_model(changed, second, weights.read_directions(second))
    with pytest.raises(ValueError, match="encoder .* differ"):
        export_average(tmp_path / "bad", first, second, 0.5, CPU, train_set=data["dataset"],
                       val_set=data["sample_set"], log=lambda message: None)
    with pytest.raises(ValueError, match="ratio"):
        export_average(tmp_path / "bad", first, first, 1.5, CPU, train_set=data["dataset"],
                       val_set=data["sample_set"], log=lambda message: None)


def test_ablation_export_holds_only_the_colorization_net(runs, tmp_path):
    root, _ = runs
    out = tmp_path / "ablation"
    export_ablation(out, CONFIG, CPU, ablation_run=root / "ablation")
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["colorization.safetensors"]
    loaded = weights.load(str(out), device="cpu")
    assert loaded.config.gan_prior is False and loaded.directions is None
    x_l = torch.rand(2, 1, 64, 64) * 2 - 1
    shift = torch.randn(120)
    # without the prior the class and z shifts change nothing
    same = loaded.model(x_l, torch.tensor([1, 2]))
    assert torch.equal(same, loaded.model(x_l, torch.tensor([5, 7]), shift))
    with pytest.raises(FileNotFoundError, match="no ablation run"):
        export_ablation(tmp_path / "x", CONFIG, CPU, ablation_run=root / "stage2")


def test_full_model_warm_started_from_the_ablation_starts_as_the_ablation(runs, tmp_path):
    root, data = runs
    export_ablation(tmp_path / "ablation", CONFIG, CPU, ablation_run=root / "ablation")
    ablation = weights.load(str(tmp_path / "ablation"), device="cpu").model

    stage = ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, prior_run=root / "stage0",
                              encoder_run=root / "stage1", init_from=root / "stage2",
                              init_from_ablation=root / "ablation", **data)
    x_l = torch.rand(2, 1, 64, 64) * 2 - 1
    classes = torch.tensor([1, 2])
    with torch.no_grad():
        expected = ablation(x_l, classes)
        # the prior is there (shifting z moves the reference) but changes nothing yet
        assert torch.allclose(stage.model(x_l, classes), expected, atol=1e-5)
        assert torch.allclose(stage.model(x_l, classes, torch.randn(120) * 4), expected, atol=1e-5)
    assert stage.options()["init_from_ablation"] == str((root / "ablation").resolve())
    run_state.seed_everything(0)
    train(stage, tmp_path / "run", Budget(steps=1), seed=0)
    with torch.no_grad():  # one step opens the prior's path
        assert not torch.allclose(stage.model(x_l, classes, torch.randn(120) * 4),
                                  stage.model(x_l, classes), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="no ablation run"):
        ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, prior_run=root / "stage0",
                          encoder_run=root / "stage1", init_from_ablation=root / "stage2", **data)


def test_stage2_fine_tunes_exported_weights_without_the_earlier_runs(runs, tmp_path):
    root, data = runs
    source = tmp_path / "source"
    export_runs(runs, source)
    exported = weights.load(str(source), device="cpu").model
    stage = ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, from_weights=source,
                              ema_decay=0.5, **data)
    x_l = torch.rand(2, 1, 64, 64) * 2 - 1
    classes, shift = torch.tensor([1, 2]), torch.randn(120)
    with torch.no_grad():
        assert torch.equal(stage.model(x_l, classes, shift), exported(x_l, classes, shift))
    run_state.seed_everything(0)
    train(stage, tmp_path / "run", Budget(steps=2), seed=0)

    out = tmp_path / "fine-tuned"
    record = export_full(out, CONFIG, CPU, prior_run=tmp_path / "gone", encoder_run=tmp_path / "gone",
                         colorization_run=tmp_path / "run", train_set=data["dataset"],
                         val_set=data["sample_set"], log=lambda message: None)
    fine_tuned = weights.load(str(out), device="cpu").model
    # the frozen networks are the source's, the trained ones the run's average (not its last step)
    for name in ("generator", "encoder", "discriminator_features"):
        source_state = getattr(exported, name).state_dict()
        assert all(torch.equal(v, source_state[k])
                   for k, v in getattr(fine_tuned, name).state_dict().items())
    averaged = stage.ema.model["colorization"].state_dict()
    last = stage.model.colorization.state_dict()
    exported_now = fine_tuned.colorization.state_dict()
    assert all(torch.equal(exported_now[k], averaged[k]) for k in averaged)
    assert any(not torch.equal(exported_now[k], last[k]) for k in last)
    assert record["fine_tuned_from"] == {"weights": str(source.resolve()),
                                         "record": json.loads((source / "training.json").read_text())}
    assert record["runs"]["stage0"]["step"] == 2 and record["runs"]["stage2"]["step"] == 2


def one_loss_stage(runs, source: Path, loss: str, **options) -> tuple[ColorizationStage, dict]:
    """A stage 2 from the fixture's exported weights with only `loss` on, and a batch of 2."""
    from gcp_colorize.training.loss_weights import LOSS_NAMES, LossWeights
    _, data = runs
    if not source.exists():
        export_runs(runs, source)
    only = LossWeights(**{name: float(name == loss) for name in LOSS_NAMES})
    torch.manual_seed(0)
    stage = ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, from_weights=source,
                              weights=only, **options, **data)
    return stage, torch.utils.data.default_collate([data["dataset"][i] for i in range(2)])


@pytest.mark.parametrize("loss", ["diversity", "local_diversity"])
def test_the_diversity_loss_trains_the_prior_path(runs, tmp_path, loss, monkeypatch):
    import functools

    from gcp_colorize.model.spade import SPADE
    from gcp_colorize.training import colour_losses, stage2_colorization
    # a margin no pair reaches: the tiny nets' alternatives may already differ by the real one
    monkeypatch.setattr(stage2_colorization, "diversity_loss",
                        functools.partial(colour_losses.diversity_loss, margin=10.0))
    stage, batch = one_loss_stage(runs, tmp_path / "source", loss, shift_probability=1.0)
    dcn_before = [m.dcn.weight.clone() for m in stage.model.colorization.modules()
                  if isinstance(m, SPADE)]
    judged_sizes = []
    stage.patch_discriminator.register_forward_pre_hook(
        lambda module, inputs: judged_sizes.append(inputs[0].size(0)))
    losses = stage.train_step(batch, 0)
    assert 0.0 < losses[loss] <= 1.0
    assert judged_sizes == [2, 2, 4]  # D: photos, outputs; G: outputs and second alternatives
    dcn_after = [m.dcn.weight for m in stage.model.colorization.modules() if isinstance(m, SPADE)]
    # the only way two shifts can differ is through the warped GAN features
    assert any(not torch.equal(a, b) for a, b in zip(dcn_before, dcn_after))


def test_the_cast_loss_applies_to_unshifted_samples_only(runs, tmp_path):
    stage, batch = one_loss_stage(runs, tmp_path / "source", "cast", shift_probability=0.0)
    before = [p.clone() for p in stage.model.colorization.parameters()]
    losses = stage.train_step(batch, 0)
    assert losses["cast"] > 0.0 and losses["total"] == pytest.approx(losses["cast"])
    assert any(not torch.equal(a, b) for a, b in zip(before, stage.model.colorization.parameters()))
    stage, batch = one_loss_stage(runs, tmp_path / "source", "cast", shift_probability=1.0)
    assert "cast" not in stage.train_step(batch, 0)  # no ground truth for a shifted z


def test_the_alternative_cast_applies_to_shifted_samples_and_second_alternatives(
        runs, tmp_path, monkeypatch):
    from gcp_colorize.training import colour_losses, stage2_colorization
    stage, batch = one_loss_stage(runs, tmp_path / "source", "alternative_cast", shift_probability=1.0)
    before = [p.clone() for p in stage.model.colorization.parameters()]
    losses = stage.train_step(batch, 0)
    assert losses["alternative_cast"] > 0.0
    assert losses["total"] == pytest.approx(losses["alternative_cast"])
    assert any(not torch.equal(a, b) for a, b in zip(before, stage.model.colorization.parameters()))
    stage, batch = one_loss_stage(runs, tmp_path / "source", "alternative_cast", shift_probability=0.0)
    assert "alternative_cast" not in stage.train_step(batch, 0)  # main results have `cast`
    # with the diversity loss on, both alternatives of each of the 2 photos are held to it
    stage, batch = one_loss_stage(runs, tmp_path / "source", "alternative_cast", shift_probability=1.0)
    stage.weights = dataclasses.replace(stage.weights, diversity=1.0)
    held = []
    monkeypatch.setattr(stage2_colorization, "cast_loss", lambda ab, target, alpha: (
        held.append(ab.size(0)) or colour_losses.cast_loss(ab, target, alpha)))
    stage.train_step(batch, 0)
    assert held == [4]


def test_without_the_reference_palette_shifted_samples_get_no_palette_pull(runs, tmp_path):
    def palette_after_one_step(**options):
        stage, batch = one_loss_stage(runs, tmp_path / "source", "palette", **options)
        return stage, stage.train_step(batch, 0)

    stage, losses = palette_after_one_step(shift_probability=1.0, reference_palette=False)
    assert stage.options()["reference_palette"] is False
    assert "palette" not in losses and losses["total"] == 0.0  # every sample shifted
    assert "contextual" not in losses  # a term at weight 0 is not computed
    stage, losses = palette_after_one_step(shift_probability=1.0)
    assert losses["palette"] > 0.0  # pulled towards the GAN references
    _, with_reference = palette_after_one_step(shift_probability=0.0)
    _, without = palette_after_one_step(shift_probability=0.0, reference_palette=False)
    assert without["palette"] == pytest.approx(with_reference["palette"])  # photos' palettes


def test_stage2_refuses_weights_of_another_config(runs, tmp_path):
    root, data = runs
    export_ablation(tmp_path / "ablation", CONFIG, CPU, ablation_run=root / "ablation")
    with pytest.raises(ValueError, match="gan_prior False"):
        ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, from_weights=tmp_path / "ablation",
                          **data)
    with pytest.raises(ValueError, match="does not combine"):
        ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, from_weights=tmp_path / "ablation",
                          init_from=root / "stage2", **data)


def test_every_run_loader_refuses_a_run_of_another_config(runs):
    from gcp_colorize.training.stage1_encoder import load_encoder
    from gcp_colorize.training.stage2_colorization import load_colorization
    root, data = runs
    other = dataclasses.replace(CONFIG, name="test64-wider", e_ch=8)
    loaders = {"stage0": lambda: load_prior(root / "stage0", other, CPU, torch.arange(2)),
               "stage1": lambda: load_encoder(root / "stage1", other, CPU),
               "stage2": lambda: load_colorization(root / "stage2", "stage2", other, CPU),
               "ablation": lambda: load_colorization(root / "ablation", "ablation",
                                                     dataclasses.replace(other, gan_prior=False), CPU)}
    for stage, load in loaders.items():
        with pytest.raises(ValueError, match=f"the {stage} run in .* is for config 'test64', not 'test64-wider'"):
            load()
    with pytest.raises(ValueError, match="stage0 run .* is for config 'test64'"):
        GANPriorStage(other, CPU, seed=0, batch_size=4, init_from=root / "stage0", **data)


def test_the_ablation_starts_from_a_full_models_net_with_the_prior_path_closed(runs, tmp_path):
    root, data = runs
    export_runs(runs, tmp_path / "full")
    full = weights.load(str(tmp_path / "full"), device="cpu").model
    stage = ColorizationStage(CONFIG, CPU, seed=0, batch_size=2, use_prior=False,
                              from_weights=tmp_path / "full", **data)
    x_l = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = full.colorization(x_l, full.zero_conditions(2, CPU))
        assert torch.equal(stage.model(x_l, torch.tensor([1, 2])), expected)
    assert stage.options()["prior_path_closed"] is True


def test_stage2_gives_exported_weights_the_classifiers_semantic_maps(runs, tmp_path):
    """From weights without them to a config with semantic_features: the same colours at
    the start (the projection is zero), training opens the projection, and the export
    loads and colorizes through the Colorizer as the new config."""
    from gcp_colorize.colorizer import Colorizer
    from gcp_colorize.model.classifier import SEMANTIC_CHANNELS
    _, data = runs
    source = tmp_path / "source"
    export_runs(runs, source)
    exported = weights.load(str(source), device="cpu").model
    semantic_config = dataclasses.replace(CONFIG, name="test64-semantic", semantic_features=True)
    stage = ColorizationStage(semantic_config, CPU, seed=0, batch_size=2, from_weights=source, **data)
    x_l, classes = torch.rand(2, 1, 64, 64) * 2 - 1, torch.tensor([1, 2])
    semantic = torch.randn(2, SEMANTIC_CHANNELS, 28, 28)
    with torch.no_grad():
        assert torch.equal(stage.model(x_l, classes, semantic=semantic), exported(x_l, classes))
    run_state.seed_everything(0)
    train(stage, tmp_path / "run", Budget(steps=2), seed=0)
    assert stage.model.colorization.semantic_projection.weight.abs().sum() > 0

    out = tmp_path / "semantic"
    export_full(out, semantic_config, CPU, prior_run=tmp_path / "gone",
                encoder_run=tmp_path / "gone", colorization_run=tmp_path / "run",
                train_set=data["dataset"], val_set=data["sample_set"], log=lambda message: None)
    assert weights.load(str(out), device="cpu").config == semantic_config
    results = Colorizer(str(out), "cpu").colorize(np.full((40, 50, 3), 0.5, np.float32),
                                                  alternatives=1, seed=0)
    assert [r.rgb.shape for r in results] == [(40, 50, 3)] * 2


def test_semantic_features_are_added_only_to_the_same_config():
    from gcp_colorize.training.stage2_colorization import with_semantic_features
    other = dataclasses.replace(CONFIG, name="other", semantic_features=True, color_ngf=8)
    with pytest.raises(ValueError, match="not 'test64' with semantic features"):
        with_semantic_features(GCPModel(CONFIG), other)
