"""Host-independent plugin logic shared by the Krita and GIMP plugins.

Everything here is plain data in, plain data out, so it is tested under pytest without a
host: which protocol layout a host pixel format travels as, the area to colorize (layer,
canvas and selection bounds), the selection mask, the pixel cap, request options from the
plugin settings, and the names of the output layers.

Standard library and ``core.*`` only: this module is copied into Krita's and GIMP's Python.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import DTYPES, LAYOUTS, MAX_VARIATION, PixelImage, ResultImage


class HostError(Exception):
    """Something the artist must change before colorizing; the message says what."""


# -- pixel formats ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PixelFormat:
    """How a host's pixels travel: a protocol layout and sample type."""

    layout: str
    dtype: str

    @property
    def bytes_per_pixel(self) -> int:
        return LAYOUTS[self.layout] * DTYPES[self.dtype]


# Krita colour model / depth ids -> wire format. Krita stores integer RGBA as B,G,R,A and
# float RGBA as R,G,B,A; GRAYA is gray, alpha at every depth.
_KRITA_DTYPES = {"U8": "uint8", "U16": "uint16", "F16": "float16", "F32": "float32"}
KRITA_MODEL_NAMES = {"RGBA": "RGB", "GRAYA": "grayscale", "CMYKA": "CMYK", "LABA": "L*a*b*", "XYZA": "XYZ",
                     "YCbCrA": "YCbCr"}  # Krita's colour model ids, as its menus name them
# The profiles whose pixels need no conversion before they travel (sRGB-encoded).
KRITA_SRGB_PROFILES = {"RGBA": "sRGB-elle-V2-srgbtrc.icc", "GRAYA": "Gray-D50-elle-V2-srgbtrc.icc"}


def krita_pixel_format(color_model: str, color_depth: str) -> PixelFormat:
    """The wire format of a Krita paint layer (``colorModel()``, ``colorDepth()``).

    Raises HostError for colour models the colorizer cannot read (CMYK, Lab, ...)."""
    if color_model not in ("RGBA", "GRAYA"):
        name = KRITA_MODEL_NAMES.get(color_model, color_model or "unknown")
        raise HostError(f"The layer is in the {name} colour model; GCP Colorize reads RGB and grayscale "
                        "layers. Convert it first (Layer > Convert > Convert Layer Color Space... > RGB/Alpha).")
    if color_depth not in _KRITA_DTYPES:
        raise HostError(f"The layer has the channel depth {color_depth!r}; GCP Colorize reads 8-bit and "
                        "16-bit integer and 16-bit and 32-bit float layers.")
    dtype = _KRITA_DTYPES[color_depth]
    if color_model == "GRAYA":
        return PixelFormat("GRAYA", dtype)
    return PixelFormat("BGRA" if color_depth in ("U8", "U16") else "RGBA", dtype)


# -- the area to colorize ---------------------------------------------------------------------

@dataclass(frozen=True)
class Rect:
    """An axis-aligned pixel rectangle in image coordinates."""

    x: int
    y: int
    width: int
    height: int

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    @property
    def pixels(self) -> int:
        return 0 if self.is_empty else self.width * self.height

    def intersect(self, other: "Rect") -> "Rect":
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def colorize_area(layer: Rect, canvas: Rect, selection: Rect | None) -> Rect:
    """The pixels to send: the layer's painted bounds, clipped to the canvas and to the
    selection's bounds when there is a selection. Raises HostError when nothing is left."""
    if layer.is_empty:
        raise HostError("The active layer is empty: there is nothing to colorize.")
    area = layer.intersect(canvas)
    if area.is_empty:
        raise HostError("The active layer has no pixels inside the canvas.")
    if selection is not None:
        area = area.intersect(selection)
        if area.is_empty:
            raise HostError("The selection does not overlap the active layer's pixels. "
                            "Select part of the layer, or deselect (Ctrl+Shift+A) to colorize all of it.")
    return area


# Refuse larger areas before reading them, whatever the backend allows: a whole 16k canvas
# sent by accident would stall the host and the backend for minutes.
DEFAULT_MAX_PIXELS = 4096 * 4096


def check_pixel_cap(area: Rect, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise HostError when ``area`` has more than ``max_pixels`` pixels."""
    if area.pixels > max_pixels:
        raise HostError(f"The area to colorize is {area.width} x {area.height} = {area.pixels:,} pixels; the "
                        f"limit is {max_pixels:,} pixels. Select a smaller area or scale the layer down first.")


def selection_mask(mask: bytes, area: Rect) -> PixelImage | None:
    """The GRAY uint8 mask for a selection's bytes over ``area`` (one byte per pixel, 255 =
    selected), or None when everything is fully selected (nothing to mask)."""
    if len(mask) != area.pixels:
        raise ValueError(f"selection mask has {len(mask)} bytes for a {area.width}x{area.height} area")
    if mask.count(255) == len(mask):
        return None
    if not any(mask):
        raise HostError("Nothing is selected inside the active layer's pixels.")
    return PixelImage(mask, area.width, area.height, "GRAY", "uint8")


_ALPHA_CHANNEL = {"RGBA": 3, "BGRA": 3, "GRAYA": 1}
_UNSELECTED_TO_ZERO = bytes([0] + [255] * 255)  # translate table: mask 0 -> 0x00, else 0xFF


def clear_unselected(pixels: bytearray, fmt: PixelFormat, mask: PixelImage) -> None:
    """Make the pixels where ``mask`` is 0 fully transparent, in place.

    The backend blends chroma by the mask and returns the original pixels where it is 0;
    clearing those leaves the result layer transparent outside the selection, while soft
    edges stay continuous with the original underneath. Works on every dtype because a
    zero sample is all zero bytes; runs at C speed (byte slices and one big-int AND)."""
    if fmt.layout not in _ALPHA_CHANNEL:
        raise ValueError(f"layout {fmt.layout} has no alpha channel to clear")
    sample = DTYPES[fmt.dtype]
    bpp = fmt.bytes_per_pixel
    count = mask.width * mask.height
    if len(pixels) != count * bpp or mask.data.nbytes != count:
        raise ValueError(f"{len(pixels)} bytes of pixels and {mask.data.nbytes} of mask for a "
                         f"{mask.width}x{mask.height} area at {bpp} bytes per pixel (rows must be packed)")
    keep = int.from_bytes(bytes(mask.data).translate(_UNSELECTED_TO_ZERO), "little")
    first = _ALPHA_CHANNEL[fmt.layout] * sample
    for offset in range(first, first + sample):
        alpha = int.from_bytes(pixels[offset::bpp], "little")
        pixels[offset::bpp] = (alpha & keep).to_bytes(count, "little")


# -- settings and the request ---------------------------------------------------------------------

OUTPUT_MODES = ("color", "chroma")  # full-colour layers, or chroma-only layers in Color blending
MAX_SEED = 2**31 - 1                # what a host spin box holds; the protocol allows up to 2**63


@dataclass
class ColorizeSettings:
    """What the artist chose in the plugin's panel; plain values that hosts persist as text."""

    alternatives: int = 3
    seed: int = field(default_factory=lambda: new_seed())
    class_choice: str = "auto"      # "auto", or an ImageNet class name / index as text
    class_alternatives: bool = True
    walk_direction: str = ""        # "" = no latent walk
    walk_amount: float = 0.0
    variation: float = 1.0          # how far the alternatives move (protocol: ColorizeRequest)
    output_mode: str = "color"

    def request_options(self) -> dict:
        """Keyword arguments for ``Client.submit`` (besides the image and the mask).

        Raises HostError for settings that cannot make a request."""
        if self.output_mode not in OUTPUT_MODES:
            raise HostError(f"Unknown output mode {self.output_mode!r}; expected one of {', '.join(OUTPUT_MODES)}.")
        if not 0 <= self.alternatives <= 64:
            raise HostError(f"The number of alternatives must be between 0 and 64, not {self.alternatives}.")
        if not 0 <= self.seed <= MAX_SEED:
            raise HostError(f"The seed must be between 0 and {MAX_SEED}, not {self.seed}.")
        if not 0 <= self.variation <= MAX_VARIATION:
            raise HostError(f"The variation must be between 0 and {MAX_VARIATION:g}, not {self.variation}.")
        choice = self.class_choice.strip()
        if not choice or choice.lower() == "auto":
            class_choice: int | str = "auto"
        elif choice.isdigit():
            class_choice = int(choice)
        else:
            class_choice = choice
        walk = None
        if self.walk_direction.strip() and self.walk_amount != 0:
            walk = (self.walk_direction.strip(), float(self.walk_amount))
        return {"alternatives": self.alternatives, "seed": self.seed, "class_choice": class_choice,
                "class_alternatives": self.class_alternatives, "walk": walk, "variation": float(self.variation)}

    def to_strings(self) -> dict[str, str]:
        """Every setting as text, for a host's settings store."""
        return {"alternatives": str(self.alternatives), "seed": str(self.seed),
                "class_choice": self.class_choice, "class_alternatives": str(self.class_alternatives).lower(),
                "walk_direction": self.walk_direction, "walk_amount": repr(self.walk_amount),
                "variation": repr(self.variation), "output_mode": self.output_mode}

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> "ColorizeSettings":
        """Settings from a host's store; missing or unreadable values take their defaults."""
        settings = cls()
        readers = {"alternatives": int, "seed": int, "class_choice": str,
                   "class_alternatives": lambda v: v.strip().lower() == "true",
                   "walk_direction": str, "walk_amount": float, "variation": float, "output_mode": str}
        for name, read in readers.items():
            text = values.get(name)
            if text is None or text == "":
                continue
            try:
                setattr(settings, name, read(text))
            except ValueError:
                pass  # a hand-edited or older settings file: keep the default
        if settings.output_mode not in OUTPUT_MODES:
            settings.output_mode = "color"
        return settings


def new_seed() -> int:
    return random.randint(0, MAX_SEED)


# -- output layers ------------------------------------------------------------------------------

def short_class_name(class_name: str) -> str:
    """The first of an ImageNet class's synonyms ("goldfinch, Carduelis carduelis" -> "goldfinch")."""
    return class_name.split(",")[0].strip()


def result_layer_name(label: str, class_name: str, seed: int | None = None,
                      walk: tuple[str, float] | None = None, variation: float | None = None) -> str:
    """"Colorized (goldfinch)" / "Alternative 2 (seed 9, variation 2, goldfinch)" for a
    result's label ("colorized", "alternative 2"), class name, the seed and variation of a
    random alternative (the variation only when not the default 1) and the latent walk
    ("saturation +2"), so that an artist can read back from the layer what made it."""
    title = label.strip().capitalize() or "Colorized"
    parts = [f"{walk[0]} {walk[1]:+g}"] if walk else []
    if seed is not None:
        parts.append(f"seed {seed}")
    if variation is not None and variation != 1.0:
        parts.append(f"variation {variation:g}")
    if short_class_name(class_name):
        parts.append(short_class_name(class_name))
    return f"{title} ({', '.join(parts)})" if parts else title


def result_layer_names(results: list[ResultImage], options: dict) -> list[str]:
    """Layer names for a job's results (main result first) from ``request_options()`` (or
    ``Client.submit``'s keyword arguments, with its defaults): the walk applies to every
    result; the seed and the variation name only random alternatives, the ones they made
    (the main result's latent code is the encoder's, class alternatives change the class)."""
    random_alternatives = not options.get("class_alternatives", ColorizeSettings.class_alternatives)
    names = []
    for k, r in enumerate(results):
        drawn = k > 0 and random_alternatives  # made by the seed and the variation
        names.append(result_layer_name(r.label, r.class_name, r.seed if drawn else None,
                                       options.get("walk"),
                                       options.get("variation", ColorizeSettings.variation) if drawn else None))
    return names


def result_group_name(source_name: str) -> str:
    return f"GCP Colorize: {source_name}" if source_name else "GCP Colorize"


def tight_rows(image: PixelImage) -> memoryview:
    """The image's bytes without row padding (hosts' pixel setters take packed rows)."""
    row = image.width * image.bytes_per_pixel
    if image.stride == row:
        return image.data[: row * image.height]
    return memoryview(b"".join(image.data[y * image.stride: y * image.stride + row] for y in range(image.height)))


# -- GIMP pixel formats -----------------------------------------------------------------------

# Component part of a Gimp.Precision name -> (babl component type, wire dtype). u32 and
# double have no wire type; float32 carries them without visible loss.
_GIMP_COMPONENTS = {"U8": ("u8", "uint8"), "U16": ("u16", "uint16"), "U32": ("float", "float32"),
                    "HALF": ("half", "float16"), "FLOAT": ("float", "float32"), "DOUBLE": ("float", "float32")}


def gimp_pixel_format(precision: str) -> tuple[str, PixelFormat]:
    """(babl format, wire format) to read and write a GIMP drawable of ``precision`` (a
    Gimp.Precision name such as "GIMP_PRECISION_U16_LINEAR") without losing depth.

    Always sRGB-encoded RGBA ("R'G'B'A"), whatever the image's linearity, mode (gray is
    read as RGB: the results carry colour) or colour profile: GEGL converts both ways."""
    component, _, encoding = precision.upper().removeprefix("GIMP_PRECISION_").partition("_")
    if component not in _GIMP_COMPONENTS or encoding not in ("LINEAR", "NON_LINEAR", "PERCEPTUAL"):
        raise HostError(f"GCP Colorize cannot read GIMP images of precision {precision!r}.")
    babl_type, dtype = _GIMP_COMPONENTS[component]
    return f"R'G'B'A {babl_type}", PixelFormat("RGBA", dtype)


# -- starting the backend ---------------------------------------------------------------------

# Written next to an installed plugin by `gcp-colorize install-plugin`: {"command": [...]}.
BACKEND_COMMAND_FILE = "backend-command.json"


def backend_command(plugin_dir: str | Path) -> list[str]:
    """The command that starts the backend this plugin was installed from (see
    BACKEND_COMMAND_FILE); raises HostError saying how to fix a missing or broken file."""
    path = Path(plugin_dir) / BACKEND_COMMAND_FILE
    fix = "start the backend with `gcp-colorize serve`, or reinstall the plugin with `gcp-colorize install-plugin`"
    try:
        command = json.loads(path.read_text())["command"]
    except FileNotFoundError:
        raise HostError(f"The backend is not running and {path} is missing, so it cannot be started; {fix}.") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HostError(f"Cannot read the backend command from {path} ({exc}); {fix}.") from None
    if not isinstance(command, list) or not command or not all(isinstance(part, str) for part in command):
        raise HostError(f"{path} does not hold a command (a list of strings); {fix}.")
    return command


def backend_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment to start the backend with: the host's, less the variables that
    point a Python at the host's own modules (Krita, and GIMP's bundled Pythons, set them),
    which would shadow the backend's installation."""
    return {name: value for name, value in environ.items() if name not in ("PYTHONPATH", "PYTHONHOME")}
