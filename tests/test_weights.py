"""Weights store: the tensor file format, weights directories and weights names."""

import dataclasses
import json
import logging

import pytest
import torch

from gcp_colorize import cli, weights
from gcp_colorize.model.config import TINY
from gcp_colorize.model.deformator import NamedDirections
from gcp_colorize.model.gcp import GCPModel

# TINY's widths at 64 px: a whole GCPModel in a fraction of a second.
TINY64 = dataclasses.replace(TINY, resolution=64, attention_resolution=16)


def test_tensor_file_round_trip_and_byte_layout(tmp_path):
    tensors = {
        "scalar": torch.tensor(0.25),
        "matrix": torch.randn(3, 4).t(),  # not contiguous
        "half": torch.randn(5, dtype=torch.float16),
        "bf16": torch.randn(2, 3, dtype=torch.bfloat16),
        "ids": torch.arange(7),
        "flags": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 2),
    }
    path = tmp_path / "t.safetensors"
    weights.save_tensors(path, tensors, {"note": "hello"})
    loaded, metadata = weights.load_tensors(path)
    assert metadata == {"note": "hello"}
    assert list(loaded) == list(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name

    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert header_len % 8 == 0
    header = json.loads(raw[8:8 + header_len])
    assert header["__metadata__"] == {"note": "hello"}
    assert header["matrix"] == {"dtype": "F32", "shape": [4, 3], "data_offsets": [4, 52]}
    begin, end = header["matrix"]["data_offsets"]
    data = raw[8 + header_len:]
    as_floats = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32)
    assert torch.equal(as_floats.view(4, 3), tensors["matrix"])  # raw little-endian, row-major
    assert len(data) == max(e["data_offsets"][1] for k, e in header.items() if k != "__metadata__")


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:5], "shorter than its header"),
    (lambda raw: raw[:-4], "bytes"),
    (lambda raw: raw + b"\0\0\0\0", "trailing bytes"),
    (lambda raw: (10 ** 9).to_bytes(8, "little") + raw[8:], "beyond the end"),
    (lambda raw: raw[:8] + b"[" + raw[9:], "not JSON"),
])
def test_corrupt_tensor_files_are_reported(tmp_path, damage, message):
    path = tmp_path / "t.safetensors"
    weights.save_tensors(path, {"a": torch.ones(3), "b": torch.zeros(2, 2)})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(weights.WeightsError, match=message):
        weights.load_tensors(path)


def test_overlapping_entries_are_reported(tmp_path):
    path = tmp_path / "t.safetensors"
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    with pytest.raises(weights.WeightsError, match="overlaps"):
        weights.load_tensors(path)


def test_weights_directory_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GCPModel(TINY64).eval()
    directions = NamedDirections(["warm", "cool"], torch.randn(2, TINY64.dim_z))
    weights.save_model(model, tmp_path, directions)
    assert {p.name for p in tmp_path.iterdir()} == {
        "config.json", "directions.safetensors",
        *(f"{n}.safetensors" for n in GCPModel.NETWORKS)}
    loaded = weights.load(str(tmp_path), device="cpu")
    assert loaded.config == TINY64 and loaded.source == str(tmp_path)
    assert loaded.directions.names == ["warm", "cool"]
    assert torch.equal(loaded.directions.vectors, directions.vectors)
    assert not loaded.model.training
    x_l, classes = torch.rand(2, 1, 64, 64) * 2 - 1, torch.tensor([1, 9])
    with torch.no_grad():
        assert torch.equal(loaded.model(x_l, classes), model(x_l, classes))


def test_strict_loading_names_the_missing_key(tmp_path):
    weights.save_model(GCPModel(TINY64), tmp_path)
    path = tmp_path / "encoder.safetensors"
    tensors, metadata = weights.load_tensors(path)
    del tensors["linear.bias"]
    weights.save_tensors(path, tensors, metadata)
    with pytest.raises(weights.WeightsError, match="linear.bias"):
        weights.load(str(tmp_path), device="cpu")


def test_missing_default_weights_name_the_file(tmp_path, monkeypatch):
    weights.save_model(GCPModel(TINY64), tmp_path)
    (tmp_path / "generator.safetensors").unlink()
    monkeypatch.setattr(weights, "default_weights_dir", lambda: tmp_path)
    with pytest.raises(weights.WeightsError, match="generator.safetensors"):
        weights.load("default", device="cpu")
    (tmp_path / "config.json").unlink()
    with pytest.raises(weights.WeightsError, match="config.json"):
        weights.load("default", device="cpu")


def test_names_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert weights.default_weights_dir() == weights.resolve("default")
    assert weights.default_weights_dir().parent.parent == \
        weights.Path(weights.__file__).resolve().parents[2]
    with pytest.raises(weights.WeightsError, match="import-official"):
        weights.resolve("official")
    official = tmp_path / "gcp-colorize" / "weights" / "official"
    official.mkdir(parents=True)
    assert weights.resolve("official") == official
    assert weights.resolve(str(official)) == official
    assert weights.resolve("random:tiny") is TINY
    with pytest.raises(weights.WeightsError, match="random:small"):
        weights.resolve("random:huge")
    with pytest.raises(weights.WeightsError, match="neither a weights name"):
        weights.resolve(str(tmp_path / "nothing-here"))


def test_random_weights_are_seeded_and_loudly_untrained(caplog):
    with caplog.at_level(logging.WARNING, logger="gcp_colorize.weights"):
        first = weights.load("random:tiny", device="cpu")
    assert "UNTRAINED" in caplog.text
    second = weights.load("random:tiny", device="cpu")
    assert first.config is TINY and first.directions is None
    for (key, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), key


def test_list_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    official = tmp_path / "gcp-colorize" / "weights" / "official"
    weights.save_model(GCPModel(TINY64), official)
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "official" in out and "config tiny" in out and str(official) in out
    assert "random:small" in out and "UNTRAINED" in out
    (official / "colorization.safetensors").unlink()
    cli.main(["weights", "list"])
    assert "INCOMPLETE (missing colorization.safetensors)" in capsys.readouterr().out
