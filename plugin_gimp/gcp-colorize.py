#!/usr/bin/env python3
"""GCP Colorize for GIMP 3: colorize the active layer (or its selected area) with the local
GCP Colorize backend; the result and its alternatives become new layers in a group above it.

Registers the image procedure ``plug-in-gcp-colorize`` (Filters > Colors > GCP Colorize…),
usable from the dialog, from scripts and in batch mode. Host glue only: the request, the
layer names and the backend start-up come from the shared ``core`` package that
`gcp-colorize install-plugin gimp` copies next to this file.
"""

import os
import sys
import traceback

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, PLUGIN_DIR)

import gi  # noqa: E402  (the plugin folder must be on sys.path first)

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

from core import hostcore  # noqa: E402
from core.client import Client, ClientError, PixelImage  # noqa: E402
from core.hostcore import HostError  # noqa: E402

import cancel_guard  # noqa: E402

PROCEDURE_NAME = "plug-in-gcp-colorize"
TITLE = "GCP Colorize"
# Output modes: chroma-only layers keep the original's lightness through their blend mode.
OUTPUT_MODES = (("full-color", "Full colour layers", Gimp.LayerMode.NORMAL),
                ("lch-color", "Chroma only (LCh colour blend)", Gimp.LayerMode.LCH_COLOR),
                ("hsl-color", "Chroma only (HSL colour blend)", Gimp.LayerMode.HSL_COLOR))
MAX_ALTERNATIVES = 16  # the dialog's limit; the backend's own limit is checked on submit
READWRITE = GObject.ParamFlags.READWRITE


def colorize(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        group = run_colorize(image, drawables, config)
    except (HostError, ClientError) as exc:
        return failure(procedure, str(exc))
    except Exception as exc:  # a bug: still an error GIMP shows, with the details on stderr
        traceback.print_exc()
        return failure(procedure, f"unexpected error ({type(exc).__name__}: {exc}); please report it")
    return Gimp.ValueArray.new_from_values([GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS),
                                            GObject.Value(Gimp.GroupLayer, group)])


def failure(procedure, message):
    Gimp.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                       GLib.Error.new_literal(Gimp.PlugIn.error_quark(),
                                                              f"{TITLE}: {message}", 0))


def show_dialog(procedure, config):
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(PROCEDURE_NAME)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, TITLE)
    dialog.fill(None)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


def run_colorize(image, drawables, config):
    """Send the source area to the backend and insert the results; returns the new group."""
    source = source_layer(image, drawables)
    seed = config.get_property("seed")
    settings = hostcore.ColorizeSettings(
        alternatives=config.get_property("alternatives"), seed=seed if seed >= 0 else hostcore.new_seed(),
        class_choice=config.get_property("class-choice") or "",  # GIMP hands "" over as None
        class_alternatives=config.get_property("class-alternatives"),
        walk_direction=config.get_property("walk-direction") or "", walk_amount=config.get_property("walk-amount"),
        variation=config.get_property("variation"))
    options = settings.request_options()
    blend_mode = {nick: mode for nick, _, mode in OUTPUT_MODES}[config.get_property("output-mode")]
    area = source_area(source)
    hostcore.check_pixel_cap(area)
    babl_format, wire_format = hostcore.gimp_pixel_format(image.get_precision().value_name)

    Gimp.progress_init(f"{TITLE}: connecting to the backend")
    client = connect()
    try:
        hostcore.check_pixel_cap(area, client.backend.max_pixels)
        pixels = source.get_buffer().get(Gegl.Rectangle.new(area.x, area.y, area.width, area.height),
                                         1.0, babl_format, Gegl.AbyssPolicy.CLAMP)
        job = client.submit(PixelImage(pixels, area.width, area.height, wire_format.layout, wire_format.dtype),
                            **options)
        # GIMP kills a plug-in whose progress the user cancels; the guard then cancels the job.
        with cancel_guard.guarding(client.connection, job.id):
            result = job.wait(on_progress=show_progress)
    finally:
        client.close()
    group = insert_results(image, source, area, result.images, options, babl_format, blend_mode)
    Gimp.progress_end()
    Gimp.displays_flush()
    return group


def source_layer(image, drawables):
    if len(drawables) != 1:
        raise HostError(f"Select exactly one layer to colorize ({len(drawables)} are selected).")
    source = drawables[0]
    if not source.is_layer():
        raise HostError("The active drawable is a channel or a mask; select a layer to colorize.")
    if source.is_group_layer():
        raise HostError("The active layer is a layer group; select a pixel layer inside it.")
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise HostError("Indexed images cannot hold the colours; convert with Image > Mode > RGB first.")
    return source


def source_area(source):
    """The layer's pixels inside the selection's bounds (all of them without a selection),
    in layer coordinates."""
    inside, x, y, width, height = source.mask_intersect()
    if not inside:
        raise HostError("The selection does not overlap the active layer. Select part of the layer, "
                        "or Select > None to colorize all of it.")
    return hostcore.Rect(x, y, width, height)


def connect():
    try:
        return Client.connect()
    except ClientError:
        pass  # not running, or a stale connection file: start it
    Gimp.progress_set_text(f"{TITLE}: starting the backend (the first start loads the model)")
    return Client.connect_or_start(hostcore.backend_command(PLUGIN_DIR), env=hostcore.backend_environment(os.environ))


def show_progress(stage, fraction):
    Gimp.progress_set_text(f"{TITLE}: {stage}")
    Gimp.progress_update(fraction)


def insert_results(image, source, area, results, options, babl_format, blend_mode):
    """One undo step: a pass-through group above the source holding the main result (visible)
    and the alternatives (hidden), transparent outside the selection (soft edges blend)."""
    has_selection = not Gimp.Selection.is_empty(image)
    _, offset_x, offset_y = source.get_offsets()
    image.undo_group_start()
    try:
        if image.get_base_type() == Gimp.ImageBaseType.GRAY:
            image.convert_rgb()  # a gray image cannot hold the colours; undone with the rest
        group = Gimp.GroupLayer.new(image, hostcore.result_group_name(source.get_name()))
        image.insert_layer(group, source.get_parent(), image.get_item_position(source))
        group.set_mode(Gimp.LayerMode.PASS_THROUGH)
        names = hostcore.result_layer_names(results, options)
        for index, (result, name) in enumerate(zip(results, names)):
            layer = Gimp.Layer.new(image, name, area.width, area.height, Gimp.ImageType.RGBA_IMAGE, 100.0,
                                   blend_mode)
            image.insert_layer(layer, group, index)
            layer.set_offsets(offset_x + area.x, offset_y + area.y)
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, area.width, area.height), babl_format,
                       bytes(hostcore.tight_rows(result.image)))
            buffer.flush()
            if has_selection:  # the selection becomes the layer's alpha
                layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
                layer.remove_mask(Gimp.MaskApplyMode.APPLY)
            layer.set_visible(index == 0)
            layer.update(0, 0, area.width, area.height)
    finally:
        image.undo_group_end()
    return group


class GcpColorize(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE_NAME]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, colorize, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("GCP Colorize…")
        procedure.add_menu_path("<Image>/Filters/Colors")
        procedure.set_documentation(
            "Colorize a layer and get alternative colourings as new layers",
            "Sends the active layer (inside the selection, if any) to the local GCP Colorize backend "
            "(GCP-Colorization: a generative colour prior) and puts the colorized result and its "
            "alternatives into a new layer group above the layer. Lightness stays the original's; "
            "outside the selection the results are transparent. Starts the backend if needed.",
            name)
        procedure.set_attribution("GCP Colorize", "GCP Colorize", "2026")
        procedure.add_int_argument("alternatives", "_Alternatives", "Alternative colourings besides the main one",
                                   0, MAX_ALTERNATIVES, 3, READWRITE)
        procedure.add_double_argument("variation", "_Variation",
                                      "How far random alternatives move from the main result (1: the model's "
                                      "usual spread; 0: none); class alternatives ignore it",
                                      0.0, hostcore.MAX_VARIATION, 1.0, READWRITE)
        procedure.add_int_argument("seed", "_Seed (-1: new each run)",
                                   "Seed of random alternatives (-1: a new one each run; their names carry it)",
                                   -1, hostcore.MAX_SEED, -1, READWRITE)
        procedure.add_string_argument("class-choice", "_Class",
                                      "ImageNet class guiding the colours: auto, an index (0-999) or a name",
                                      "auto", READWRITE)
        procedure.add_boolean_argument("class-alternatives", "Alternatives from other _likely classes",
                                       "Alternatives use likely classes that colour differently; off: random "
                                       "ones from the seed and the variation",
                                       True, READWRITE)
        procedure.add_string_argument("walk-direction", "Latent walk _direction",
                                      "Name of a latent direction to move along (empty: none)", "", READWRITE)
        procedure.add_double_argument("walk-amount", "Latent walk a_mount", "How far to move along the direction",
                                      -10.0, 10.0, 0.0, READWRITE)
        modes = Gimp.Choice.new()
        for number, (nick, label, _) in enumerate(OUTPUT_MODES):
            modes.add(nick, number, label, "")
        procedure.add_choice_argument("output-mode", "_Output", "Full colour layers, or chroma-only layers "
                                      "blended over the original", modes, "full-color", READWRITE)
        procedure.add_group_layer_return_value("group", "Group", "The new layer group holding the results",
                                               False, READWRITE)
        return procedure


Gimp.main(GcpColorize.__gtype__, sys.argv)
