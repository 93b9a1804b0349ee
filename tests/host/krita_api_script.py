"""Runs INSIDE Krita under kritarunner (see test_krita_api.py): drives the installed
plugin's document glue (gcp_colorize.layer_io) against a real backend, for every layer
format, a soft selection and the refusals, and dumps what ended up in the documents.

main(args): args = [work_dir]. work_dir holds photo.json (size) and photo.gray (raw uint8
gray photo); the script writes result.json and one .raw file per dumped layer. All
checks on pixel values happen in pytest (numpy); this side only records."""

import json
import os
import struct
import traceback

SRGB = {"RGBA": "sRGB-elle-V2-srgbtrc.icc", "GRAYA": "Gray-D50-elle-V2-srgbtrc.icc"}
LINEAR = {"RGBA": "sRGB-elle-V2-g10.icc", "GRAYA": "Gray-D50-elle-V2-g10.icc"}
# (layer model, depth, linear profile?, output mode): every depth, both models, both curves.
CASES = [("RGBA", "U8", False, "color"), ("RGBA", "U16", True, "chroma"), ("RGBA", "F16", False, "color"),
         ("RGBA", "F32", True, "color"), ("GRAYA", "U8", False, "chroma"), ("GRAYA", "U16", True, "color"),
         ("GRAYA", "F16", True, "color"), ("GRAYA", "F32", False, "color")]
CANVAS = (96, 72)
OFFSET = (8, 6)  # where the photo sits on the canvas (the rest of the layer is empty)


def main(args):
    work = args[0]
    result = {}
    try:
        run(work, result)
    except Exception:
        result["error"] = traceback.format_exc()
    with open(os.path.join(work, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    os._exit(0)  # kritarunner exits 0 whatever happens; the result file carries the outcome


def run(work, result):
    from krita import Krita, Selection

    from gcp_colorize import layer_io
    from gcp_colorize.core.client import Client
    from gcp_colorize.core.hostcore import HostError

    app = Krita.instance()
    photo = json.load(open(os.path.join(work, "photo.json")))
    width, height = photo["width"], photo["height"]
    gray = open(os.path.join(work, "photo.gray"), "rb").read()
    client = Client.connect(timeout=30)
    result["backend"] = {"device": client.backend.device, "weights": client.backend.weights}

    def new_document(model, depth, linear, name):
        doc = app.createDocument(CANVAS[0], CANVAS[1], name, "RGBA", depth,
                                 LINEAR["RGBA"] if linear else SRGB["RGBA"], 72.0)
        node = doc.createNode("Photo", "paintlayer")
        doc.rootNode().addChildNode(node, None)
        if model != "RGBA":
            assert node.setColorSpace(model, depth, LINEAR[model] if linear else SRGB[model])
        node.setPixelData(photo_pixels(gray, width, height, model, depth, linear), *OFFSET, width, height)
        return doc, node

    def colorize(doc, node, mode, options):
        source = layer_io.read_layer(doc, node, 4096 * 4096)
        job = client.submit(source.image, source.mask, **options)
        results = job.wait(timeout=600)
        group = layer_io.insert_results(source, results.images, options, mode)
        return source, group, results

    def dump_layer(doc, node, tag):
        x, y, w, h = 0, 0, doc.width(), doc.height()
        raw = bytes(node.pixelData(x, y, w, h))
        name = f"{tag}.raw"
        with open(os.path.join(work, name), "wb") as f:
            f.write(raw)
        b = node.bounds()
        return {"name": node.name(), "type": node.type(), "blending": node.blendingMode(), "visible": node.visible(),
                "model": node.colorModel(), "depth": node.colorDepth(), "profile": node.colorProfile(),
                "bounds": [b.x(), b.y(), b.width(), b.height()], "file": name}

    def record(doc, node, before, source, group, results, tag, extra=None):
        children = group.childNodes()  # bottom to top
        entry = {
            "doc": {"model": doc.colorModel(), "depth": doc.colorDepth(), "profile": doc.colorProfile(),
                    "width": doc.width(), "height": doc.height()},
            "area": [source.area.x, source.area.y, source.area.width, source.area.height],
            "wire": [source.wire_format.layout, source.wire_format.dtype],
            "source": dump_layer(doc, node, f"{tag}-source"),
            "source_identical": bytes(node.pixelData(0, 0, doc.width(), doc.height())) == before,
            "root_order": [n.name() for n in doc.rootNode().childNodes()],
            "group": {"name": group.name(), "type": group.type(), "pass_through": group.passThroughMode(),
                      "parent_is_root": group.parentNode().uniqueId() == doc.rootNode().uniqueId()},
            "children": [dump_layer(doc, child, f"{tag}-layer{i}") for i, child in enumerate(children)],
            "results": [{"label": r.label, "seed": r.seed, "class_name": r.class_name} for r in results.images],
        }
        entry.update(extra or {})
        return entry

    cases = {}
    for model, depth, linear, mode in CASES:
        tag = f"{model}-{depth}-{'linear' if linear else 'srgb'}"
        doc, node = new_document(model, depth, linear, tag)
        before = bytes(node.pixelData(0, 0, doc.width(), doc.height()))
        source, group, results = colorize(doc, node, mode, {"alternatives": 2, "seed": 1234})
        cases[tag] = record(doc, node, before, source, group, results, tag, {"mode": mode, "linear": linear})
    result["cases"] = cases

    # A soft selection: fully selected on the left, a ramp in the middle, nothing on the right.
    doc, node = new_document("RGBA", "U8", False, "selection")
    before = bytes(node.pixelData(0, 0, doc.width(), doc.height()))
    sx, sy, sw, sh = 4, 10, 80, 40  # starts left of the photo: the area is clipped to the layer
    mask = bytes(255 if c < 30 else max(0, 255 - (c - 30) * 8) for r in range(sh) for c in range(sw))
    selection = Selection()
    selection.setPixelData(mask, sx, sy, sw, sh)
    doc.setSelection(selection)
    source, group, results = colorize(doc, node, "color", {"alternatives": 1, "seed": 99})
    sel = doc.selection()
    with open(os.path.join(work, "selection-mask.raw"), "wb") as f:
        f.write(bytes(sel.pixelData(0, 0, doc.width(), doc.height())))
    result["selection"] = record(doc, node, before, source, group, results, "selection",
                                 {"selection_bounds": [sel.x(), sel.y(), sel.width(), sel.height()]})

    # Refusals: each must be a HostError with a message, and leave the document unchanged.
    refusals = {}

    def refused(name, doc, node, max_pixels=4096 * 4096):
        layers_before = [n.name() for n in doc.rootNode().childNodes()]
        try:
            layer_io.read_layer(doc, node, max_pixels)
        except HostError as exc:
            refusals[name] = {"message": str(exc),
                              "unchanged": [n.name() for n in doc.rootNode().childNodes()] == layers_before}
        else:
            refusals[name] = {"message": None}

    for model, depth in (("CMYKA", "U8"), ("LABA", "U16")):
        doc = app.createDocument(32, 32, model, model, depth, "", 72.0)
        node = doc.createNode("Layer", "paintlayer")
        doc.rootNode().addChildNode(node, None)
        refused(model, doc, node)
    doc, node = new_document("RGBA", "U8", False, "refusals")
    cmyk = doc.createNode("CMYK", "paintlayer")
    doc.rootNode().addChildNode(cmyk, None)
    cmyk.setPixelData(bytes([200, 100, 50, 255]) * 16, 0, 0, 4, 4)
    assert cmyk.setColorSpace("CMYKA", "U8", "Chemical proof")
    refused("CMYK layer", doc, cmyk)
    group = doc.createGroupLayer("Group")
    doc.rootNode().addChildNode(group, None)
    refused("group layer", doc, group)
    vector = doc.createVectorLayer("Vector")
    doc.rootNode().addChildNode(vector, None)
    refused("vector layer", doc, vector)
    empty = doc.createNode("Empty", "paintlayer")
    doc.rootNode().addChildNode(empty, None)
    refused("empty layer", doc, empty)
    refused("too large", doc, node, max_pixels=1000)
    selection = Selection()
    selection.select(OFFSET[0] + width + 2, 0, 3, 3, 255)
    doc.setSelection(selection)
    refused("selection outside the layer", doc, node)
    gray_doc = app.createDocument(32, 32, "gray image", "GRAYA", "U8", "", 72.0)
    gray_node = gray_doc.createNode("Layer", "paintlayer")
    gray_doc.rootNode().addChildNode(gray_node, None)
    gray_node.setPixelData(bytes([128, 255]) * 32 * 32, 0, 0, 32, 32)
    refused("grayscale image", gray_doc, gray_node)
    result["refusals"] = refusals


def photo_pixels(gray, width, height, model, depth, linear):
    """The gray photo in Krita's byte layout for ``model``/``depth``, with an alpha ramp
    in the bottom rows (transparent at the very bottom)."""
    code = {"U8": "B", "U16": "H", "F16": "e", "F32": "f"}[depth]
    top = {"U8": 255, "U16": 65535}.get(depth)
    channels = 2 if model == "GRAYA" else 4
    pack = struct.Struct("<" + code * channels).pack
    out = bytearray()
    for y in range(height):
        alpha = 1.0 if y < height - 8 else (height - 1 - y) / 8.0
        for x in range(width):
            v = gray[y * width + x] / 255.0
            if linear:
                v = v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
            value, a = (round(v * top), round(alpha * top)) if top else (v, alpha)
            out += pack(value, a) if channels == 2 else pack(value, value, value, a)
    return bytes(out)
