"""`gcp-colorize weights import-official DIR` and `gcp-colorize weights list`.

The import reads the released GCP checkpoints with `torch.load(weights_only=True)` (no
code runs), checks every key and shape strictly against the official layout (built from
this project's networks with the OFFICIAL config), and stores them as the `official`
weights set. Nothing is written unless every file passes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

G_FILE = "biggan_G_ema_256.pth"
D_FILE = "biggan_D_256.pth"
E_FILE = "biggan_E.pth"
COLORIZATION_FILE = "colorization_model.pth"
DEFORMATOR_FILE = "deformator_for_biggan.pt"
# Entries of colorization_model.pth -> (GCPModel network).
COLORIZATION_PARTS = {"net_corr": "correspondence", "net_gen": "colorization"}
_SHOWN_KEYS = 12


def register(subparsers) -> None:
    parser = subparsers.add_parser("weights", help="list weights sets, import the official ones")
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import-official", help="check and import the released GCP-Colorization checkpoints",
        description=f"DIR holds {G_FILE}, {D_FILE}, {E_FILE}, {COLORIZATION_FILE} and "
                    f"optionally {DEFORMATOR_FILE}.")
    imp.add_argument("directory", type=Path, metavar="DIR")
    imp.add_argument("--force", action="store_true", help="replace an earlier import")
    imp.set_defaults(func=_run_import)
    lst = actions.add_parser("list", help="show the weights sets and where they are")
    lst.set_defaults(func=_run_list)


def official_layout() -> dict[str, dict[str, tuple[int, ...]]]:
    """{official file or colorization part: {key: shape}}, from the project's networks."""
    import torch

    from .model.biggan_discriminator import BigGANDiscriminator
    from .model.biggan_generator import BigGANGenerator
    from .model.colorization_net import ColorizationNet
    from .model.config import OFFICIAL
    from .model.correspondence import CorrespondenceNet
    from .model.encoder import GANEncoder

    with torch.device("meta"):  # shapes only, nothing allocated
        nets = {G_FILE: BigGANGenerator(OFFICIAL), D_FILE: BigGANDiscriminator(OFFICIAL),
                E_FILE: GANEncoder(OFFICIAL), "net_corr": CorrespondenceNet(OFFICIAL),
                "net_gen": ColorizationNet(OFFICIAL)}
    return {name: {k: tuple(v.shape) for k, v in net.state_dict().items()}
            for name, net in nets.items()}


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN_KEYS])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _SHOWN_KEYS else "")


def check_layout(found: dict, expected: dict[str, tuple[int, ...]], label: str) -> None:
    """Raise WeightsError naming every missing, unexpected and mis-shaped key."""
    from .weights import WeightsError

    problems = []
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in found.items()}
    wrong = [f"{k} {shapes[k]} (expected {shape})" for k, shape in expected.items()
             if k in shapes and shapes[k] != shape]
    if wrong:
        problems.append(f"wrong shapes: {_listing(wrong)}")
    if problems:
        raise WeightsError(f"{label} does not have the official layout; " + "; ".join(problems))


def _load_checkpoint(path: Path) -> dict:
    import torch

    from .weights import WeightsError

    if not path.is_file():
        raise WeightsError(f"missing checkpoint: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle that is not plain tensors, or not a checkpoint
        raise WeightsError(f"{path} cannot be read as a plain state dict: {exc}") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def _as_float32(state: dict) -> dict:
    import torch

    from .weights import WeightsError

    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise WeightsError(f"{key} is not a floating-point tensor")
    return {k: v.to(torch.float32).contiguous() for k, v in state.items()}


def import_official(source: Path, target: Path, force: bool = False) -> list[str]:
    """Check the checkpoints in `source` and write them as a weights set at `target`.
    Returns what was imported, one line per part."""
    from .model.biggan_discriminator import feature_state_dict
    from .model.config import OFFICIAL
    from .model.deformator import NamedDirections
    from .weights import WeightsError, write_weights_dir

    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise WeightsError(f"{source} is not a directory")
    if target.exists() and not force:
        raise WeightsError(f"{target} already exists; pass --force to replace it")
    layout = official_layout()
    networks, report = {}, []

    def take(label: str, state: dict, layout_name: str) -> dict:
        check_layout(state, layout[layout_name], label)
        report.append(f"{label}: {len(state)} tensors, "
                      f"{sum(v.numel() for v in state.values()) / 1e6:.1f}M values")
        return _as_float32(state)

    networks["generator"] = take(G_FILE, _load_checkpoint(source / G_FILE), G_FILE)
    networks["discriminator_features"] = feature_state_dict(
        take(D_FILE, _load_checkpoint(source / D_FILE), D_FILE))
    networks["encoder"] = take(E_FILE, _load_checkpoint(source / E_FILE), E_FILE)
    colorization = _load_checkpoint(source / COLORIZATION_FILE)
    if set(colorization) != set(COLORIZATION_PARTS):
        raise WeightsError(f"{source / COLORIZATION_FILE} must hold exactly "
                           f"{sorted(COLORIZATION_PARTS)}, found {sorted(colorization)}")
    for part, network in COLORIZATION_PARTS.items():
        if not isinstance(colorization[part], dict):
            raise WeightsError(f"{COLORIZATION_FILE}[{part!r}] is not a state dict")
        networks[network] = take(f"{COLORIZATION_FILE}[{part!r}]", colorization[part], part)

    directions = None
    if (source / DEFORMATOR_FILE).exists():
        state = _load_checkpoint(source / DEFORMATOR_FILE)
        n = OFFICIAL.z_slots * OFFICIAL.z_chunk  # the z dims G reads (119)
        check_layout(state, {"log_mat_half": (n, n)}, DEFORMATOR_FILE)
        directions = NamedDirections.from_official(_as_float32(state)["log_mat_half"],
                                                   OFFICIAL.dim_z)
        report.append(f"{DEFORMATOR_FILE}: directions {', '.join(directions.names)}")

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".importing")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_weights_dir(staging, OFFICIAL, networks, directions)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _run_import(args) -> int:
    from .weights import WeightsError, official_weights_dir

    target = official_weights_dir()
    try:
        for line in import_official(args.directory, target, force=args.force):
            print(line)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"imported as 'official' into {target}")
    return 0


def _run_list(args) -> int:
    from .model.config import CONFIGS
    from .weights import RANDOM_PREFIX, default_weights_dir, describe, official_weights_dir

    for name, directory in (("default", default_weights_dir()),
                            ("official", official_weights_dir())):
        info = describe(directory)
        if info["missing"]:
            state = "not installed" if len(info["missing"]) > 1 else \
                f"INCOMPLETE (missing {', '.join(info['missing'])})"
        else:
            state = info.get("error") or (
                f"config {info['config']}, {info['size_mb']:.1f} MB"
                + (", with directions" if info["directions"] else ""))
        print(f"{name:16s} {state}  [{info['path']}]")
    for config in CONFIGS:
        print(f"{RANDOM_PREFIX + config:16s} random, UNTRAINED (plumbing tests only)")
    return 0
