"""Training loop: exact resume, budgets, batch order, checkpoints, bad input."""

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from gcp_colorize.training import run_state
from gcp_colorize.training.batches import BatchOrder, collate
from gcp_colorize.training.ema import EMA
from gcp_colorize.training.loop import Budget, train
from synthetic_photos import SyntheticPhotos


class ToyStage:
    """A tiny stage with everything a real one has: optimiser, EMA, noise in the step."""

    name = "toy"
    batch_size = 4
    device = torch.device("cpu")

    def __init__(self):
        self.dataset = SyntheticPhotos(n=10, size=8)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                 nn.Conv2d(4, 3, 3, padding=1))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-2)
        self.ema = EMA(self.net, decay=0.9)
        self.samples_written = []

    def options(self):
        return {"stage": self.name, "lr": 1e-2}

    def train_step(self, batch, step):
        noisy = batch["rgb"] + 0.1 * torch.randn_like(batch["rgb"])
        loss = (self.net(noisy) - batch["rgb"]).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.ema.update(self.net)
        return {"loss": loss.item()}

    def state_dict(self):
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(),
                "ema": self.ema.state_dict()}

    def load_state_dict(self, state):
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.ema.load_state_dict(state["ema"])

    def write_samples(self, path: Path):
        self.samples_written.append(path)


def build_stage(seed):
    run_state.seed_everything(seed)
    return ToyStage()


def final_state(stage):
    return {**{"net." + k: v for k, v in stage.net.state_dict().items()},
            **{"ema." + k: v for k, v in stage.ema.model.state_dict().items()}}


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = build_stage(7)
    assert train(straight, tmp_path / "a", Budget(steps=7), seed=7) == 7

    first = build_stage(7)
    assert train(first, tmp_path / "b", Budget(steps=3), seed=7) == 3
    resumed = build_stage(123)  # a new process: other init, other RNG, all restored
    assert train(resumed, tmp_path / "b", Budget(steps=7), seed=7) == 7

    a, b = final_state(straight), final_state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log = (tmp_path / "b" / "train.log").read_text()
    assert "resumed at step 3" in log


def test_bf16_runs_the_steps_under_autocast_and_a_run_may_switch_to_it(tmp_path):
    stage = build_stage(0)
    train(stage, tmp_path, Budget(steps=2), seed=0)
    resumed = build_stage(0)
    seen = []
    step = resumed.train_step

    def recording_step(batch, i):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return step(batch, i)

    resumed.train_step = recording_step
    assert train(resumed, tmp_path, Budget(steps=4), seed=0, bf16=True) == 4
    assert seen == [(True, torch.bfloat16)] * 2
    assert not torch.is_autocast_enabled("cpu")  # only inside the steps
    assert resumed.net[0].weight.dtype == torch.float32
    assert "steps in bf16 autocast" in (tmp_path / "train.log").read_text()


def test_a_different_seed_gives_a_different_run(tmp_path):
    one, two = build_stage(1), build_stage(2)
    train(one, tmp_path / "a", Budget(steps=2), seed=1)
    train(two, tmp_path / "b", Budget(steps=2), seed=2)
    assert not torch.equal(one.net[0].weight, two.net[0].weight)


def test_a_spent_budget_runs_no_step_and_keeps_the_checkpoint(tmp_path):
    stage = build_stage(0)
    train(stage, tmp_path, Budget(steps=2), seed=0)
    before = (tmp_path / run_state.CHECKPOINT_NAME).read_bytes()
    again = build_stage(0)
    assert train(again, tmp_path, Budget(steps=2), seed=0) == 2
    state = torch.load(tmp_path / run_state.CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 2
    assert len(before) > 0 and (tmp_path / run_state.PREVIOUS_NAME).exists()


def test_resuming_with_other_options_is_refused(tmp_path):
    stage = build_stage(0)
    train(stage, tmp_path, Budget(steps=1), seed=0)
    other = build_stage(0)
    other.options = lambda: {"stage": "toy", "lr": 5.0}
    with pytest.raises(ValueError, match="differ"):
        train(other, tmp_path, Budget(steps=2), seed=0)


def test_options_added_later_may_be_missing_from_an_older_run_at_their_old_value():
    from gcp_colorize.training.loop import options_match
    older = {"stage": "toy", "weights": {"ab": 1.0}}
    added_later = {"weights": {"diversity": 0.0}, "reference_palette": True}
    current = {"stage": "toy", "weights": {"ab": 1.0, "diversity": 0.0}, "reference_palette": True}
    assert options_match(older, current, added_later)
    assert not options_match(older, current)  # without the declaration: a different run
    for changed in ({"weights": {"ab": 1.0, "diversity": 2.0}}, {"reference_palette": False},
                    {"weights": {"ab": 0.5, "diversity": 0.0}}):
        assert not options_match(older, {**current, **changed}, added_later)
    assert not options_match({**older, "gone": 1}, current, added_later)


def test_a_stage2_run_from_before_a_loss_existed_resumes_with_that_loss_off():
    from gcp_colorize.training.loop import options_match
    from gcp_colorize.training.loss_weights import LossWeights
    from gcp_colorize.training.stage2_colorization import ColorizationStage
    current = {"stage": "stage2", "weights": dataclasses.asdict(LossWeights(ab=0.5))}
    older = {"stage": "stage2", "weights": {k: v for k, v in current["weights"].items()
                                            if k not in ("cast", "alternative_cast")}}
    assert options_match(older, current, ColorizationStage.options_added_later)
    turned_on = {**current, "weights": {**current["weights"], "alternative_cast": 10.0}}
    assert not options_match(older, turned_on, ColorizationStage.options_added_later)


def test_a_non_finite_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path):
    stage = build_stage(0)
    train(stage, tmp_path, Budget(steps=1), seed=0)
    broken = build_stage(0)
    broken.train_step = lambda batch, step: {"loss": float("nan")}
    with pytest.raises(FloatingPointError, match="not finite"):
        train(broken, tmp_path, Budget(steps=3), seed=0)
    assert torch.load(tmp_path / run_state.CHECKPOINT_NAME, weights_only=True)["step"] == 1


def test_budget_needs_steps_or_hours_and_reports_the_larger_fraction():
    with pytest.raises(ValueError):
        Budget()
    with pytest.raises(ValueError):
        Budget(steps=-1)
    budget = Budget(steps=100, hours=1.0)
    assert budget.fraction(50, 0.0) == 0.5
    assert budget.fraction(10, 2700.0) == 0.75


def test_batch_order_covers_each_epoch_once_and_resumes():
    order = BatchOrder(10, 4, seed=3)
    items = [item for _ in range(5) for item in order.next_batch()]  # 20 = two epochs
    seen = [i for _, i in items]
    assert [e for e, _ in items] == [0] * 10 + [1] * 10
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert seen[:10] != seen[10:]
    state = order.state_dict()
    expected = order.next_batch()
    other = BatchOrder(10, 4, seed=3)
    other.load_state_dict(state)
    assert other.next_batch() == expected
    with pytest.raises(ValueError, match="batch_size"):
        BatchOrder(10, 5, seed=3).load_state_dict(state)
    with pytest.raises(ValueError, match="empty"):
        BatchOrder(0, 4, seed=3)


def test_collate_stacks_tensors_and_numbers():
    batch = collate([{"x": torch.zeros(2), "y": 1}, {"x": torch.ones(2), "y": 2}])
    assert batch["x"].shape == (2, 2) and batch["y"].tolist() == [1, 2]


def test_rng_capture_and_restore_round_trip():
    import random

    import numpy as np
    state = run_state.capture_rng()
    a = (torch.rand(3), np.random.rand(3), random.random())
    run_state.restore_rng(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_ema_follows_the_weights_and_ramps_up():
    net = nn.Linear(2, 2)
    ema = EMA(net, decay=0.99)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    # first update uses decay 2/11: the average moves most of the way
    assert torch.allclose(ema.model.weight, net.weight - 2 / 11, atol=1e-6)
    with pytest.raises(ValueError):
        EMA(net, decay=1.0)


def test_a_run_directory_is_trained_by_one_process_at_a_time(tmp_path):
    from gcp_colorize.training.loop import RunLock
    tmp_path.mkdir(exist_ok=True)
    with RunLock(tmp_path):
        with pytest.raises(RuntimeError, match="another process"):
            train(build_stage(0), tmp_path, Budget(steps=1), seed=0)
    assert train(build_stage(0), tmp_path, Budget(steps=1), seed=0) == 1
