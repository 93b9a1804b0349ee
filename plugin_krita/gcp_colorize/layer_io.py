"""Krita document glue: read the active layer's area as wire pixels, insert the results.

The backend reads and writes sRGB-encoded pixels. Layers in other profiles (the linear
"g10" profiles Krita uses by default for 16-bit and float images, wide-gamut RGB) and
grayscale layers are converted by Krita's own colour management in a throwaway scratch
document, so the user's document and its undo history never see the conversion.

Results go into one new group above the source layer. Krita 5.1.5's Python API has no
undo macros; what it offers (measured): ``Node.addChildNode`` records one undoable "Add
Layer" command per call, even for a group that is not in the image yet, while
``Node.setChildNodes`` records nothing, and pixels, names, visibility and blending set on
nodes outside the image record nothing either. So the group is built completely outside
the image (``setChildNodes``) and inserted with one ``addChildNode``: the whole insertion
is exactly one undo step ("Add Layer"), and redo brings it back with its pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from krita import Krita

from .core.hostcore import (KRITA_MODEL_NAMES, KRITA_SRGB_PROFILES, HostError, PixelFormat, Rect,
                            check_pixel_cap, clear_unselected, colorize_area, krita_pixel_format,
                            result_group_name, result_layer_names, selection_mask, tight_rows)
from .core.protocol import PixelImage, ResultImage

_LAYER_KINDS = {"grouplayer": "a group layer", "vectorlayer": "a vector layer", "filelayer": "a file layer",
                "filllayer": "a fill layer", "filterlayer": "a filter layer", "clonelayer": "a clone layer",
                "transparencymask": "a transparency mask", "filtermask": "a filter mask",
                "transformmask": "a transform mask", "selectionmask": "a selection mask",
                "colorizemask": "a colorize mask"}


# Krita 5.1.5's 16-bit integer Gray -> RGB conversion is coarse in the shadows (up to 4.7
# CIELAB L off, measured); its float path is exact, so 16-bit gray travels as float32.
_WIRE_DEPTH = {("GRAYA", "U16"): "F32"}


@dataclass(frozen=True)
class ColorSpace:
    model: str
    depth: str
    profile: str


@dataclass
class SourceArea:
    """The pixels of one colorize request and where their results belong."""

    document: object          # krita.Document
    node_id: object           # QUuid of the source layer
    node_name: str
    area: Rect                # image coordinates of the pixels
    image: PixelImage         # sRGB-encoded, in ``wire_format``
    mask: PixelImage | None   # GRAY selection mask over ``area``; None = all selected
    wire_format: PixelFormat
    wire_space: ColorSpace    # Krita's name for the colour space of ``image``


def read_active_layer(document, max_pixels: int) -> SourceArea:
    """Read the active layer of ``document``; see ``read_layer``."""
    if document is None:
        raise HostError("Open an image first.")
    node = document.activeNode()
    if node is None:
        raise HostError("Select a paint layer to colorize.")
    return read_layer(document, node, max_pixels)


def read_layer(document, node, max_pixels: int) -> SourceArea:
    """Read the paint layer ``node`` of ``document`` (bounded by the canvas and the
    selection) as the pixels to send. Raises HostError with what the artist should do."""
    if node.type() != "paintlayer":
        kind = _LAYER_KINDS.get(node.type(), f"a {node.type() or 'special'} layer")
        raise HostError(f"The active layer \"{node.name()}\" is {kind}; select a paint layer to colorize.")
    if document.colorModel() != "RGBA":
        model = KRITA_MODEL_NAMES.get(document.colorModel(), document.colorModel())
        raise HostError(f"The image is in the {model} colour model, so colours would not show. "
                        "Convert it first (Image > Convert Image Color Space... > RGB/Alpha).")
    source_format = krita_pixel_format(node.colorModel(), node.colorDepth())

    selection = document.selection()
    area = colorize_area(_rect(node.bounds()), Rect(0, 0, document.width(), document.height()),
                         Rect(selection.x(), selection.y(), selection.width(), selection.height())
                         if selection is not None else None)
    check_pixel_cap(area, max_pixels)
    mask = selection_mask(bytes(selection.pixelData(*_xywh(area))), area) if selection is not None else None

    pixels = bytes(node.pixelData(*_xywh(area)))
    if len(pixels) != area.pixels * source_format.bytes_per_pixel:
        raise HostError(f"Krita returned {len(pixels)} bytes for a {area.width}x{area.height} "
                        f"{node.colorModel()}/{node.colorDepth()} area; cannot read this layer.")
    source_space = ColorSpace(node.colorModel(), node.colorDepth(), node.colorProfile())
    wire_space = ColorSpace("RGBA", _WIRE_DEPTH.get((node.colorModel(), node.colorDepth()), node.colorDepth()),
                            KRITA_SRGB_PROFILES["RGBA"])
    if source_space != wire_space:
        pixels = convert_pixels([pixels], area, source_space, wire_space)[0]
    wire_format = krita_pixel_format(wire_space.model, wire_space.depth)
    return SourceArea(document, node.uniqueId(), node.name(), area,
                      PixelImage(pixels, area.width, area.height, wire_format.layout, wire_format.dtype),
                      mask, wire_format, wire_space)


def insert_results(source: SourceArea, results: list[ResultImage], options: dict, output_mode: str):
    """Put the results into a new group above the source layer (one undo step) and
    return the group, its layers named from the results and the request's ``options``.
    ``output_mode`` "chroma" makes Color-blended layers in a pass-through group, so only
    their colour applies over the original."""
    document = source.document
    if document not in Krita.instance().documents():
        raise HostError("The image was closed before the colorization finished; the result was discarded.")
    target_space = ColorSpace(document.colorModel(), document.colorDepth(), document.colorProfile())
    buffers = []
    for result in results:
        image = result.image
        if (image.width, image.height, image.layout, image.dtype) != (
                source.area.width, source.area.height, source.wire_format.layout, source.wire_format.dtype):
            raise HostError(f"The backend returned a {image.width}x{image.height} {image.layout} {image.dtype} "
                            f"image for a {source.area.width}x{source.area.height} {source.wire_format.layout} "
                            f"{source.wire_format.dtype} request; is the backend up to date?")
        pixels = bytearray(tight_rows(image))
        if source.mask is not None:
            clear_unselected(pixels, source.wire_format, source.mask)
        buffers.append(pixels)
    if target_space != source.wire_space:
        buffers = convert_pixels(buffers, source.area, source.wire_space, target_space)

    group = document.createGroupLayer(result_group_name(source.node_name))
    if output_mode == "chroma":
        group.setPassThroughMode(True)
    layers = []
    for name, pixels in zip(result_layer_names(results, options), buffers):
        layer = document.createNode(name, "paintlayer")
        layer.setPixelData(bytes(pixels), *_xywh(source.area))
        if output_mode == "chroma":
            layer.setBlendingMode("color")
        layers.append(layer)
    for layer in layers:
        layer.setVisible(layer is layers[0])  # the main result is the one shown
    # Bottom to top: the last alternative first, the main result on top. setChildNodes on a
    # group outside the image records no undo step (addChildNode would record one each).
    group.setChildNodes(list(reversed(layers)))

    source_node = find_node(document, source.node_id)
    if source_node is not None:
        source_node.parentNode().addChildNode(group, source_node)
    else:  # the source was deleted meanwhile: keep the result, on top of the image
        root = document.rootNode()
        children = root.childNodes()
        root.addChildNode(group, children[-1] if children else None)
    return group


def convert_pixels(buffers: list[bytes], area: Rect, source: ColorSpace, target: ColorSpace) -> list[bytes]:
    """Convert packed pixel buffers of ``area``'s size from one Krita colour space to
    another with Krita's colour management, in a scratch document (whose undo history is
    thrown away with it)."""
    app = Krita.instance()
    scratch = app.createDocument(area.width, area.height, "GCP Colorize scratch", source.model, source.depth,
                                 source.profile, 72.0)
    if scratch is None:
        raise HostError(f"Krita cannot create a {source.model}/{source.depth} image with the profile "
                        f"{source.profile!r} to convert the pixels.")
    try:
        converted = []
        for pixels in buffers:
            node = scratch.createNode("pixels", "paintlayer")
            node.setPixelData(bytes(pixels), 0, 0, area.width, area.height)
            if not node.setColorSpace(target.model, target.depth, target.profile):
                raise HostError(f"Krita could not convert {source.model}/{source.depth} ({source.profile}) "
                                f"to {target.model}/{target.depth} ({target.profile}).")
            converted.append(bytes(node.pixelData(0, 0, area.width, area.height)))
        return converted
    finally:
        scratch.close()


def find_node(document, node_id):
    """The node of ``document`` whose uniqueId is ``node_id``, or None."""
    pending = list(document.rootNode().childNodes())
    while pending:
        node = pending.pop()
        if node.uniqueId() == node_id:
            return node
        pending.extend(node.childNodes())
    return None


def _rect(qrect) -> Rect:
    return Rect(qrect.x(), qrect.y(), qrect.width(), qrect.height())


def _xywh(rect: Rect) -> tuple[int, int, int, int]:
    return rect.x, rect.y, rect.width, rect.height
