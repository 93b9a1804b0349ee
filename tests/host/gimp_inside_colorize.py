"""Runs inside GIMP 3 (python-fu-eval batch interpreter, script read from stdin): for each
case of the plan file named by $GCP_GIMP_PLAN, open a photo, prepare the image (precision,
mode, canvas padding, selection), call plug-in-gcp-colorize through the PDB and record
what it did: status and message, the layer tree, raw pixels of the source and of every
new layer, the selection. Writes $GCP_GIMP_OUT/report.json and *.f32 pixel dumps (R'G'B'A
float, row-major) for the pytest side to check with numpy. Any exception here makes GIMP
exit with code 64, which the caller treats as a failure.

With $GCP_GIMP_UNDO_KEY set (GUI runs under Xvfb only), each case then presses Ctrl+Z in
the image's window with xdotool and records the layer tree again.
"""

import hashlib
import json
import os
import subprocess
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
from gi.repository import Babl, Gegl, Gimp, Gio  # noqa: E402

PROCEDURE = "plug-in-gcp-colorize"
OUT = os.environ["GCP_GIMP_OUT"]


def dump(drawable, name, rect=None, babl_format="R'G'B'A float"):
    """Write the drawable's pixels (its own coordinates) to OUT/name.f32; returns the file name."""
    x, y, width, height = rect or (0, 0, drawable.get_width(), drawable.get_height())
    data = drawable.get_buffer().get(Gegl.Rectangle.new(x, y, width, height), 1.0, babl_format,
                                     Gegl.AbyssPolicy.NONE)
    path = os.path.join(OUT, name + ".f32")
    with open(path, "wb") as f:
        f.write(data)
    return os.path.basename(path)


def native_digest(layer):
    """SHA-256 of the layer's pixels in its own storage encoding (bit-exact comparison; the
    test images keep GIMP's built-in sRGB space, which the encoding name implies)."""
    encoding = Babl.format_get_encoding(layer.get_format())
    data = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height()), 1.0,
                                  encoding, Gegl.AbyssPolicy.NONE)
    return hashlib.sha256(data).hexdigest()


def describe(item):
    _, x, y = item.get_offsets()
    entry = {"id": item.get_id(), "name": item.get_name(), "group": item.is_group_layer(),
             "offsets": [x, y], "size": [item.get_width(), item.get_height()],
             "mode": item.get_mode().value_nick, "visible": item.get_visible(), "opacity": item.get_opacity()}
    if item.is_group_layer():
        entry["children"] = [describe(child) for child in item.get_children()]
    return entry


def layer_tree(image):
    return [describe(layer) for layer in image.get_layers()]


def prepare(case):
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(case["photo"]))
    source = image.get_layers()[0]
    source.set_name("photo")
    if case.get("mode") == "rgb":
        image.convert_rgb()
    elif case.get("mode") == "indexed":
        image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, "")
    if case.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, case["precision"]))
    if case.get("pad"):
        left, top, right, bottom = case["pad"]
        image.resize(image.get_width() + left + right, image.get_height() + top + bottom, left, top)
    if case.get("selection"):
        x, y, width, height, feather = case["selection"]
        image.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, width, height)
        if feather:
            Gimp.Selection.feather(image, feather)
    target = source
    if case.get("target") == "group":
        target = Gimp.GroupLayer.new(image, "a group")
        image.insert_layer(target, None, 0)
    return image, source, target


def image_window():
    """The X window of the one open image: its title ends in "GIMP" (GIMP's other top-level
    windows are called "GNU Image Manipulation Program")."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", " GIMP$"],
                               capture_output=True, text=True, timeout=10).stdout.split()
        if found:
            return found[-1]
        time.sleep(0.2)
    windows = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True, timeout=10).stdout
    raise RuntimeError(f"no image window appeared; windows:\n{windows}")


def press_undo(image):
    """Ctrl+Z in the image's window (GUI runs only: libgimp has no undo call); returns the
    display, whose deletion deletes the image too."""
    display = Gimp.Display.new(image)
    Gimp.displays_flush()
    window = image_window()
    subprocess.run(["xdotool", "windowfocus", "--sync", window], check=True, timeout=10)
    subprocess.run(["xdotool", "key", "--clearmodifiers", "ctrl+z"], check=True, timeout=10)
    before = len(image.get_layers())
    deadline = time.monotonic() + 10
    while len(image.get_layers()) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    return display


def run_case(case):
    image, source, target = prepare(case)
    record = {"name": case["name"], "precision": image.get_precision().value_name,
              "source": {"id": source.get_id(), "offsets": list(source.get_offsets()[1:]),
                         "size": [source.get_width(), source.get_height()],
                         "digest": native_digest(source), "pixels": dump(source, case["name"] + "-source")},
              "image_size": [image.get_width(), image.get_height()]}
    if case.get("selection"):
        record["selection"] = dump(image.get_selection(), case["name"] + "-selection",
                                   (0, 0, image.get_width(), image.get_height()), "Y float")
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [target])
    for name, value in case.get("arguments", {}).items():
        config.set_property(name, value)
    started = time.monotonic()
    values = procedure.run(config)
    record["seconds"] = time.monotonic() - started
    status = values.index(0)
    record["status"] = status.value_nick
    if status == Gimp.PDBStatusType.SUCCESS:
        group = values.index(1)
        record["returned_group"] = group.get_id()
        record["results"] = [dump(layer, f"{case['name']}-result-{k}")
                             for k, layer in enumerate(group.get_children())]
    else:
        record["message"] = values.index(1) if values.length() > 1 else None
    record["tree"] = layer_tree(image)
    record["base_type"] = image.get_base_type().value_nick
    record["source_digest_after"] = native_digest(source)
    record["source_pixels_after"] = dump(source, case["name"] + "-source-after")
    if os.environ.get("GCP_GIMP_UNDO_KEY"):
        display = press_undo(image)
        record["tree_after_undo"] = layer_tree(image)
        record["base_type_after_undo"] = image.get_base_type().value_nick
        record["source_digest_after_undo"] = native_digest(source)
        display.delete()
    else:
        image.delete()
    return record


with open(os.environ["GCP_GIMP_PLAN"]) as plan_file:
    plan = json.load(plan_file)
report = [run_case(case) for case in plan]
with open(os.path.join(OUT, "report.json"), "w") as report_file:
    json.dump(report, report_file, indent=1)
