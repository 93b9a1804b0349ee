"""Weights store: resolve a weights name, read and write the tensor file format.

A weights directory holds `config.json` (a `GCPConfig`), one tensor file per network of
`GCPModel` (`encoder.safetensors`, ...) and optionally `directions.safetensors` (named
latent directions). Tensor files use the safetensors layout, written and read here
without pickle: 8-byte little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian tensor bytes, back to back.

Names: `default` (the repository's `weights/default/`), `official` (imported into
`$XDG_DATA_HOME/gcp-colorize/weights/official`), a directory path, and
`random:<config>` (seeded random initialisation, for plumbing tests only).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .model.config import CONFIGS, GCPConfig
from .model.deformator import NamedDirections
from .model.gcp import GCPModel

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
DIRECTIONS_FILE = "directions.safetensors"
TENSOR_SUFFIX = ".safetensors"
RANDOM_PREFIX = "random:"
RANDOM_SEED = 0

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
    "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
    "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


class WeightsError(Exception):
    """A weights name that does not resolve, or a missing, corrupt or mismatched file."""


# --- tensor files ---------------------------------------------------------------------------

def _require_little_endian():
    if sys.byteorder != "little":
        raise WeightsError("tensor files are little-endian; big-endian hosts are not supported")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` (any device, contiguous or not) to `path` atomically."""
    _require_little_endian()
    header: dict = {"__metadata__": dict(metadata or {})}
    blobs, offset = [], 0
    for name, tensor in tensors.items():
        if tensor.dtype not in _DTYPE_NAMES:
            raise WeightsError(f"{name}: dtype {tensor.dtype} cannot be stored")
        data = tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()
        header[name] = {"dtype": _DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + data.nbytes]}
        blobs.append(data)
        offset += data.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the data 8-byte aligned
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".part",
                                     delete=False) as out:
        try:
            out.write(len(encoded).to_bytes(8, "little"))
            out.write(encoded)
            for blob in blobs:
                out.write(blob.tobytes())
        except BaseException:
            os.unlink(out.name)
            raise
    os.replace(out.name, path)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a tensor file -> (tensors on CPU, metadata). Raises WeightsError if corrupt."""
    _require_little_endian()
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"missing weights file: {path}")
    raw = np.fromfile(path, dtype=np.uint8)
    bad = f"corrupt tensor file {path}"
    if raw.size < 8:
        raise WeightsError(f"{bad}: shorter than its header length")
    header_len = int.from_bytes(raw[:8].tobytes(), "little")
    if header_len > raw.size - 8:
        raise WeightsError(f"{bad}: header length {header_len} beyond the end of the file")
    try:
        header = json.loads(raw[8:8 + header_len].tobytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{bad}: header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{bad}: header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsError(f"{bad}: __metadata__ must map strings to strings")
    data = torch.from_numpy(raw[8 + header_len:])
    tensors, spans = {}, []
    for name, entry in header.items():
        try:
            dtype = _DTYPES[entry["dtype"]]
            shape = [int(n) for n in entry["shape"]]
            begin, end = (int(n) for n in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise WeightsError(f"{bad}: malformed entry {name!r}: {entry!r}") from None
        nbytes = int(np.prod(shape, dtype=np.int64)) * torch.empty(0, dtype=dtype).element_size()
        if min(shape, default=0) < 0 or end - begin != nbytes or begin < 0 \
                or end > data.numel():
            raise WeightsError(f"{bad}: entry {name!r} has shape {shape} but bytes "
                               f"[{begin}, {end}) of {data.numel()}")
        # A copy per tensor: aligned storage (view(dtype) needs it; SIMD paths, and so
        # the last bits of results, depend on it) that does not pin the file buffer.
        tensors[name] = data[begin:end].clone().view(dtype).reshape(shape)
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise WeightsError(f"{bad}: tensor data overlaps or has holes at byte {covered}")
        covered = end
    if covered != data.numel():
        raise WeightsError(f"{bad}: {data.numel() - covered} trailing bytes")
    return tensors, metadata


# --- weights directories ---------------------------------------------------------------------

def network_file(name: str) -> str:
    return name + TENSOR_SUFFIX


def write_weights_dir(directory: Path, config: GCPConfig,
                      networks: dict[str, dict[str, torch.Tensor]],
                      directions: NamedDirections | None = None) -> None:
    """Write config.json, one file per network of GCPModel and optional directions."""
    missing = set(GCPModel.networks_of(config)) - set(networks)
    if missing:
        raise WeightsError(f"no state for network(s): {', '.join(sorted(missing))}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in GCPModel.networks_of(config):
        save_tensors(directory / network_file(name), networks[name],
                     {"network": name, "config": config.name})
    if directions is not None:
        save_tensors(directory / DIRECTIONS_FILE, {"vectors": directions.vectors},
                     {"names": json.dumps(directions.names)})
    (directory / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=1) + "\n")


def save_model(model: GCPModel, directory: Path,
               directions: NamedDirections | None = None) -> None:
    networks = {name: getattr(model, name).state_dict()
                for name in GCPModel.networks_of(model.config)}
    write_weights_dir(directory, model.config, networks, directions)


def read_config(directory: Path) -> GCPConfig:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise WeightsError(f"missing weights file: {path}")
    try:
        return GCPConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise WeightsError(f"invalid {path}: {exc}") from None


def read_directions(directory: Path) -> NamedDirections | None:
    path = Path(directory) / DIRECTIONS_FILE
    if not path.is_file():
        return None
    tensors, metadata = load_tensors(path)
    try:
        return NamedDirections(json.loads(metadata["names"]), tensors["vectors"].float())
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"invalid {path}: {exc}") from None


def read_model(directory: Path) -> GCPModel:
    """Build the GCPModel of a weights directory on CPU, every network loaded strictly."""
    directory = Path(directory)
    config = read_config(directory)
    with torch.device("meta"):
        model = GCPModel(config)
    for name in GCPModel.networks_of(config):
        path = directory / network_file(name)
        tensors, _ = load_tensors(path)
        try:
            getattr(model, name).load_state_dict(tensors, strict=True, assign=True)
        except RuntimeError as exc:
            raise WeightsError(f"{path} does not fit config {config.name!r}: {exc}") from None
    return model.to_channels_last()


# --- names ---------------------------------------------------------------------------------

def default_weights_dir() -> Path:
    """`weights/default/` of the repository (beside `backend/`)."""
    return Path(__file__).resolve().parents[2] / "weights" / "default"


def user_weights_dir() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "gcp-colorize" / "weights"


def official_weights_dir() -> Path:
    return user_weights_dir() / "official"


def resolve(name: str) -> Path | GCPConfig:
    """A weights name -> its directory, or for `random:<config>` the config to initialise."""
    if name.startswith(RANDOM_PREFIX):
        config_name = name[len(RANDOM_PREFIX):]
        if config_name not in CONFIGS:
            raise WeightsError(f"unknown config in {name!r}; known: "
                               + ", ".join(RANDOM_PREFIX + c for c in CONFIGS))
        return CONFIGS[config_name]
    if name == "default":
        return default_weights_dir()
    if name == "official":
        directory = official_weights_dir()
        if not directory.is_dir():
            raise WeightsError(f"no official weights at {directory}; run "
                               "`gcp-colorize weights import-official DIR` first")
        return directory
    directory = Path(name).expanduser()
    if not directory.is_dir():
        raise WeightsError(f"{name!r} is neither a weights name (default, official, "
                           f"random:<config>) nor a directory")
    return directory


@dataclass
class Weights:
    name: str                            # as asked for
    source: str                          # the directory, or "random:<config>"
    model: GCPModel                      # eval mode, on the chosen device
    directions: NamedDirections | None   # named latent directions, if the set has them

    @property
    def config(self) -> GCPConfig:
        return self.model.config


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load(name: str = "default", device: str | torch.device | None = None) -> Weights:
    """Resolve `name` and build its GCPModel (eval mode) on `device` (default: CUDA if
    present, else CPU)."""
    device = torch.device(device) if device is not None else default_device()
    target = resolve(name)
    if isinstance(target, GCPConfig):
        log.warning("weights %r are RANDOM and UNTRAINED (seed %d): for plumbing tests only, "
                    "their colours mean nothing", name, RANDOM_SEED)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            model = GCPModel(target)
        return Weights(name, name, model.to(device).eval(), None)
    model = read_model(target)
    return Weights(name, str(target), model.to(device).eval(), read_directions(target))


def describe(directory: Path) -> dict:
    """Summary of a weights directory for `weights list` (no tensors are read)."""
    directory = Path(directory)
    networks = GCPModel.NETWORKS
    if (directory / CONFIG_FILE).is_file():
        try:
            networks = GCPModel.networks_of(read_config(directory))
        except WeightsError:
            pass  # reported below
    files = [directory / CONFIG_FILE] + [directory / network_file(n) for n in networks]
    missing = [f.name for f in files if not f.is_file()]
    info = {"path": str(directory), "missing": missing,
            "size_mb": sum(f.stat().st_size for f in directory.glob("*" + TENSOR_SUFFIX)) / 1e6
            if directory.is_dir() else 0.0,
            "directions": (directory / DIRECTIONS_FILE).is_file()}
    if not missing:
        try:
            info["config"] = read_config(directory).name
        except WeightsError as exc:
            info["error"] = str(exc)
    return info
