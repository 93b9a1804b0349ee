"""Access to the golden reference cases made with the official GCP code
(`../shared/reference/gcp-golden` beside the repository) and the comparison used by the
`test_golden_*` modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO_ROOT.parent / "shared" / "reference" / "gcp-golden"
KEYS_DIR = REPO_ROOT.parent / "shared" / "reference" / "gcp-official-checkpoint-keys"


def golden_dir() -> Path:
    if not (GOLDEN_DIR / "manifest.json").is_file():
        pytest.fail(f"golden reference data missing: expected {GOLDEN_DIR} (the shared "
                    f"reference folder beside the repository root {REPO_ROOT})", pytrace=False)
    return GOLDEN_DIR


def load_case(name: str) -> dict:
    path = golden_dir() / name
    if not path.is_file():
        pytest.fail(f"golden case missing: {path}", pytrace=False)
    return torch.load(path, map_location="cpu", weights_only=True)


def load_strict(module: torch.nn.Module, state_dict: dict) -> torch.nn.Module:
    """Load with strict key matching (shapes too) and switch to eval mode."""
    module.load_state_dict(state_dict, strict=True)
    return module.eval()


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float,
                 rms: float | None = None, what: str = "output"):
    """Max-abs (and optionally RMS) comparison with a message giving the measured error."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != " \
                                           f"{tuple(expected.shape)}"
    diff = (actual.detach().double() - expected.double()).abs()
    max_err, rms_err = diff.max().item(), diff.pow(2).mean().sqrt().item()
    assert max_err <= atol, f"{what}: max abs error {max_err:.3g} > {atol:g}"
    if rms is not None:
        assert rms_err <= rms, f"{what}: RMS error {rms_err:.3g} > {rms:g}"


def assert_allclose(actual, expected, atol: float, rtol: float, what: str = "output"):
    """|a - e| <= atol + rtol |e| elementwise (the README's atol/rtol suggestion)."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != " \
                                           f"{tuple(expected.shape)}"
    excess = (actual.detach().double() - expected.double()).abs() \
        - (atol + rtol * expected.double().abs())
    assert excess.max().item() <= 0, f"{what}: exceeds atol {atol:g} + rtol {rtol:g} by " \
                                     f"{excess.max().item():.3g}"
