"""`weights import-official`: the official checkpoint layout, strict checks, and a full
import + 256x256 forward pass on synthetic checkpoints (random values, official keys)."""

import ast
import math

import pytest
import torch

from gcp_colorize import cli, weights, weights_commands as wc
from golden_cases import KEYS_DIR

# Official key list (gcp-official-checkpoint-keys/) of each checkpoint / colorization part.
KEY_LISTS = {wc.G_FILE: "keys_biggan_G.txt", wc.D_FILE: "keys_biggan_D.txt",
             wc.E_FILE: "keys_biggan_E.txt", "net_corr": "keys_net_corr.txt",
             "net_gen": "keys_net_gen.txt"}


def official_keys(part: str) -> dict[str, tuple[int, ...]]:
    path = KEYS_DIR / KEY_LISTS[part]
    if not path.is_file():
        pytest.fail(f"official key list missing: {path}", pytrace=False)
    keys = {}
    for line in path.read_text().splitlines():
        name, shape = line.split("\t")
        keys[name] = tuple(ast.literal_eval(shape))
    return keys


@pytest.mark.parametrize("part", list(KEY_LISTS))
def test_project_networks_have_the_official_layout(part):
    assert wc.official_layout()[part] == official_keys(part)


def test_layout_errors_name_every_bad_key():
    expected = {"a.weight": (2, 3), "a.bias": (2,), "b.weight": (4,)}
    found = {"a.weight": torch.zeros(3, 2), "b.weight": torch.zeros(4), "c.extra": torch.zeros(1)}
    with pytest.raises(weights.WeightsError) as error:
        wc.check_layout(found, expected, "some.pth")
    message = str(error.value)
    assert "some.pth" in message
    assert "missing keys: a.bias" in message
    assert "unexpected keys: c.extra" in message
    assert "a.weight (3, 2) (expected (2, 3))" in message


def fill(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Random values in a sensible range for each kind of official tensor."""
    def rand(*s):
        return torch.randn(*s, generator=generator)
    if key.endswith("stored_var"):
        return torch.rand(shape, generator=generator) + 0.5
    if key.endswith(".sv0") or key == "output_layer.0.gain":
        return torch.ones(shape)
    if key.endswith(".u0"):
        return rand(*shape)
    if key.endswith("gamma"):
        return torch.tensor(0.2)
    if key.endswith("prelu.weight"):
        return torch.full(shape, 0.25)
    if key.endswith("shared.weight") or key.endswith("embed.weight"):
        return rand(*shape) * 0.5
    if len(shape) >= 2:
        return rand(*shape) / math.sqrt(math.prod(shape[1:]))
    return rand(*shape) * 0.1


def synthetic_checkpoint(part: str, generator: torch.Generator) -> dict:
    return {k: fill(k, s, generator) for k, s in official_keys(part).items()}


def test_a_bad_checkpoint_is_refused_by_name_and_nothing_is_written(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    source = tmp_path / "official"
    source.mkdir()
    torch.save({"shared.weight": torch.zeros(1000, 128), "linear.weigth": torch.zeros(1)},
               source / wc.G_FILE)
    assert cli.main(["weights", "import-official", str(source)]) == 1
    err = capsys.readouterr().err
    assert wc.G_FILE in err and "linear.weigth" in err and "linear.weight" in err
    assert not (tmp_path / "data").exists()


def test_a_pickled_object_is_not_executed(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))
    torch.save({"x": Payload()}, tmp_path / wc.G_FILE)
    with pytest.raises(weights.WeightsError, match="cannot be read as a plain state dict"):
        wc.import_official(tmp_path, tmp_path / "out")
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.slow
def test_import_synthetic_official_checkpoints_and_run_256(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    source = tmp_path / "release"
    source.mkdir()
    generator = torch.Generator().manual_seed(0)
    for part in (wc.G_FILE, wc.D_FILE, wc.E_FILE):
        torch.save(synthetic_checkpoint(part, generator), source / part)
    torch.save({part: synthetic_checkpoint(part, generator) for part in wc.COLORIZATION_PARTS},
               source / wc.COLORIZATION_FILE)
    torch.save({"log_mat_half": 0.001 * torch.randn(119, 119, generator=generator)},
               source / wc.DEFORMATOR_FILE)

    assert cli.main(["weights", "import-official", str(source)]) == 0
    assert "imported as 'official'" in capsys.readouterr().out
    assert cli.main(["weights", "import-official", str(source)]) == 1  # no silent overwrite
    assert "--force" in capsys.readouterr().err

    loaded = weights.load("official", device="cpu")
    assert loaded.config.name == "official"
    assert loaded.directions.names == ["background colour", "object colour", "saturation"]
    stored_g = torch.load(source / wc.G_FILE, weights_only=True)
    for key, value in loaded.model.generator.state_dict().items():
        assert torch.equal(value, stored_g[key]), key
    torch.manual_seed(0)
    x_l = torch.rand(1, 1, 256, 256) * 2 - 1
    shift = loaded.directions.shift("saturation", 5.0)
    with torch.no_grad():
        run = loaded.model.run(x_l, torch.tensor([207]), z_shift=shift)
    assert run.ab_norm.shape == (1, 2, 256, 256) and torch.isfinite(run.ab_norm).all()
    assert run.reference.shape == (1, 3, 256, 256)
    assert {s: tuple(f.shape[1:]) for s, f in run.warped.items()} == {
        64: (384, 64, 64), 128: (192, 128, 128), 256: (96, 256, 256)}
