"""Test-only Krita plugin: drives the installed GCP Colorize plugin through Krita's GUI
(its action, its docker, Krita's undo/redo), records what happened to the document, writes
a JSON result file and exits Krita. Installed next to the plugin by krita_harness.

settings.json (next to this file): {"result": path, "work": dir with photo.gray/photo.json,
"scenarios": [...], "screenshots": dir or null, "timeout_s": float}. Pixel values are
dumped as .raw files into "work"; pytest checks them."""

import json
import os
import sys
import time
import traceback
from pathlib import Path

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QDockWidget, QWidget

SETTINGS = json.loads((Path(__file__).with_name("settings.json")).read_text())
RESULT = {"scenarios": {}}
POLL_S = 0.02


class Wait:
    """Yielded by a scenario: resume after ``seconds``, or once ``until()`` is true
    (failing after ``timeout`` s)."""

    def __init__(self, seconds=0.0, until=None, timeout=None, what=""):
        self.seconds, self.until, self.what = seconds, until, what
        self.deadline = None if until is None else time.monotonic() + (timeout or SETTINGS["timeout_s"])


def finish(error=None):
    if error:
        RESULT["error"] = error
    with open(SETTINGS["result"], "w") as f:
        json.dump(RESULT, f, indent=1)
    os._exit(0)  # the result file carries the outcome; Krita's exit code means nothing


def run_steps(steps):
    """Drive a generator of Wait objects on Krita's event loop."""
    def resume():
        try:
            wait = next(steps)
        except StopIteration:
            finish()
            return
        except Exception:
            finish(traceback.format_exc())
            return
        poll(wait)

    def poll(wait):
        if wait.until is None:
            QTimer.singleShot(int(wait.seconds * 1000), resume)
        elif wait.until():
            resume()
        elif time.monotonic() > wait.deadline:
            finish(f"timed out waiting for {wait.what}")
        else:
            QTimer.singleShot(int(POLL_S * 1000), lambda: poll(wait))

    resume()


class TickGaps:
    """Measures how long Krita's UI thread went without running a 20 ms timer."""

    def __init__(self):
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.worst = 0.0

    def _tick(self):
        now = time.monotonic()
        if self.last is not None:
            self.worst = max(self.worst, now - self.last)
        self.last = now

    def start(self):
        self.last, self.worst = time.monotonic(), 0.0
        self.timer.start()

    def stop(self):
        self.timer.stop()
        return self.worst


# -- helpers -------------------------------------------------------------------------------

def photo_document(width, height, offset, name):
    """An RGBA U8 sRGB image with the gray photo (alpha ramp at the bottom) on layer "Photo"."""
    app = Krita.instance()
    work = Path(SETTINGS["work"])
    info = json.loads((work / "photo.json").read_text())
    gray = (work / "photo.gray").read_bytes()
    pw, ph = info["width"], info["height"]
    doc = app.createDocument(width, height, name, "RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc", 72.0)
    node = doc.createNode("Photo", "paintlayer")
    doc.rootNode().addChildNode(node, None)
    pixels = bytearray()
    for y in range(ph):
        alpha = 255 if y < ph - 8 else round(255 * (ph - 1 - y) / 8)
        for x in range(pw):
            g = gray[y * pw + x]
            pixels += bytes((g, g, g, alpha))
    node.setPixelData(bytes(pixels), offset[0], offset[1], pw, ph)
    return doc, node


def docker_widget(cls, name):
    window = Krita.instance().activeWindow().qwindow()
    widget = window.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} {name!r} in the window"
    return widget


def names(doc):
    return [n.name() for n in doc.rootNode().childNodes()]


def dump_layer(doc, node, tag):
    raw = bytes(node.pixelData(0, 0, doc.width(), doc.height()))
    (Path(SETTINGS["work"]) / f"{tag}.raw").write_bytes(raw)
    b = node.bounds()
    return {"name": node.name(), "type": node.type(), "blending": node.blendingMode(), "visible": node.visible(),
            "model": node.colorModel(), "depth": node.colorDepth(), "profile": node.colorProfile(),
            "bounds": [b.x(), b.y(), b.width(), b.height()], "file": f"{tag}.raw"}


def record_document(doc, source, tag):
    group = next((n for n in doc.rootNode().childNodes() if n.type() == "grouplayer"), None)
    entry = {"doc": {"width": doc.width(), "height": doc.height(), "model": doc.colorModel(),
                     "depth": doc.colorDepth(), "profile": doc.colorProfile()},
             "root_order": names(doc), "source": dump_layer(doc, source, f"{tag}-source")}
    if group is not None:
        entry["group"] = {"name": group.name(), "pass_through": group.passThroughMode(),
                          "blending": group.blendingMode()}
        entry["children"] = [dump_layer(doc, child, f"{tag}-layer{i}") for i, child in enumerate(group.childNodes())]
    return entry


def session_state(session):
    return {"backend_state": session.backend_state, "backend_text": session.backend_text,
            "message": session.message, "message_is_error": session.message_is_error,
            "last_run": session.last_run, "busy": session.busy}


def trigger_and_wait(session, trigger, record, gaps, what):
    """Trigger a colorization and wait until the session is idle again."""
    session.message = ""
    started = time.monotonic()
    gaps.start()
    trigger()
    record["busy_after_trigger"] = session.busy
    yield Wait(until=lambda: not session.busy and session.message, what=what)
    record["wall_s"] = time.monotonic() - started
    record["worst_ui_gap_s"] = gaps.stop()
    record.update(session_state(session))


# -- scenarios -------------------------------------------------------------------------------

def scenarios():
    import gcp_colorize
    from gcp_colorize import session as plugin_session
    from gcp_colorize.core.hostcore import BACKEND_COMMAND_FILE

    app = Krita.instance()
    window = app.activeWindow()
    session = plugin_session.instance()
    gaps = TickGaps()
    docker = docker_widget(QDockWidget, gcp_colorize.DOCKER_ID)
    docker.show()
    docker.raise_()
    RESULT["action"] = {"exists": app.action("gcp_colorize_layer") is not None,
                        "text": app.action("gcp_colorize_layer").text()}
    command_file = Path(gcp_colorize.__file__).with_name(BACKEND_COMMAND_FILE)
    good_command = command_file.read_text()
    wanted = SETTINGS["scenarios"]

    doc, photo = photo_document(*SETTINGS["canvas"], SETTINGS["offset"], "GUI test")
    window.addView(doc)
    yield Wait(0.3)
    doc.setActiveNode(photo)
    yield Wait(0.3)  # the active-node change is applied asynchronously

    if "start_failure" in wanted:  # the backend cannot start: the docker must say why
        record = RESULT["scenarios"]["start_failure"] = {}
        command_file.write_text(json.dumps({"command": ["python3", "-c", "import sys; sys.exit(5)"]}))
        yield from trigger_and_wait(session, lambda: app.action("gcp_colorize_layer").trigger(), record, gaps,
                                    "the failed start")
        record["state_label"] = docker_widget(QWidget, "gcp_colorize_state_label").text()
        record["root_order"] = names(doc)
        command_file.write_text(good_command)

    if "warm" in wanted:  # connect (starting the backend) before timing anything
        session.connect_backend(start=True)
        yield Wait(until=lambda: session.backend_state in ("ready", "error"), what="the backend")
        RESULT["warm"] = session_state(session)

    if "action" in wanted:  # the action with settings typed into the docker; then undo / redo
        record = RESULT["scenarios"]["action"] = {}
        docker_widget(QWidget, "gcp_colorize_alternatives").setValue(SETTINGS["alternatives"])
        docker_widget(QWidget, "gcp_colorize_seed").setValue(4242)
        mode = docker_widget(QWidget, "gcp_colorize_output_mode")
        mode.setCurrentIndex(mode.findData("color"))
        before_names = names(doc)
        source_before = bytes(photo.pixelData(0, 0, doc.width(), doc.height()))
        yield from trigger_and_wait(session, lambda: app.action("gcp_colorize_layer").trigger(), record, gaps,
                                    "the colorization")
        record["before_root_order"] = before_names
        record["source_identical"] = bytes(photo.pixelData(0, 0, doc.width(), doc.height())) == source_before
        record["document"] = record_document(doc, photo, "action")
        record["progress_bar"] = docker_widget(QWidget, "gcp_colorize_progress").value()
        if "undo" in wanted:
            after_names = names(doc)
            app.action("edit_undo").trigger()
            yield Wait(until=lambda: names(doc) == before_names, timeout=10, what="undo to remove the group")
            record["after_undo"] = names(doc)
            yield Wait(0.5)
            app.action("edit_redo").trigger()
            yield Wait(until=lambda: names(doc) == after_names, timeout=10, what="redo to restore the group")
            record["after_redo"] = names(doc)
            group = next(n for n in doc.rootNode().childNodes() if n.type() == "grouplayer")
            record["after_redo_children"] = [c.name() for c in group.childNodes()]
            # One more undo must remove the group again in one step, and one after that must
            # undo something older (adding "Photo"), not a hidden part of the insertion.
            yield Wait(0.5)  # Krita ignores undo while the redo's stroke still runs
            record["undo_text"] = app.action("edit_undo").text()
            app.action("edit_undo").trigger()
            yield Wait(until=lambda: names(doc) == before_names, timeout=10, what="the second undo")
            yield Wait(0.5)
            app.action("edit_undo").trigger()
            yield Wait(until=lambda: "Photo" not in names(doc), timeout=10, what="undo of adding the photo")
            record["two_undos"] = names(doc)
            yield Wait(0.5)
            app.action("edit_redo").trigger()
            yield Wait(until=lambda: names(doc) == before_names, timeout=10, what="redo of the photo")
            doc.setActiveNode(photo)
            yield Wait(0.3)

    if "selection" in wanted:  # the docker's button, chroma output, a soft selection
        record = RESULT["scenarios"]["selection"] = {}
        sx, sy, sw, sh = SETTINGS["selection"]
        ramp = SETTINGS["selection_ramp"]
        mask = bytes(255 if c < ramp[0] else max(0, 255 - (c - ramp[0]) * ramp[1])
                     for r in range(sh) for c in range(sw))
        selection = Selection()
        selection.setPixelData(mask, sx, sy, sw, sh)
        doc.setSelection(selection)
        docker_widget(QWidget, "gcp_colorize_alternatives").setValue(1)
        variation = docker_widget(QWidget, "gcp_colorize_variation")
        class_alternatives = docker_widget(QWidget, "gcp_colorize_class_alternatives")
        random_only_boxes = (variation, docker_widget(QWidget, "gcp_colorize_seed"),
                             docker_widget(QWidget, "gcp_colorize_new_seed"))
        record["random_only_boxes_enabled"] = {"class alternatives": [w.isEnabled() for w in random_only_boxes]}
        class_alternatives.setChecked(False)  # random alternatives: the ones the variation moves
        record["random_only_boxes_enabled"]["random alternatives"] = [w.isEnabled() for w in random_only_boxes]
        variation.setValue(0.0)
        mode = docker_widget(QWidget, "gcp_colorize_output_mode")
        mode.setCurrentIndex(mode.findData("chroma"))
        before_groups = [n.uniqueId() for n in doc.rootNode().childNodes() if n.type() == "grouplayer"]
        source_before = bytes(photo.pixelData(0, 0, doc.width(), doc.height()))
        yield from trigger_and_wait(session, docker_widget(QWidget, "gcp_colorize_colorize_button").click,
                                    record, gaps, "the colorization of the selection")
        record["source_identical"] = bytes(photo.pixelData(0, 0, doc.width(), doc.height())) == source_before
        variation.setValue(1.0)  # the defaults again (screenshots)
        class_alternatives.setChecked(True)
        for group in doc.rootNode().childNodes():  # keep only the new group for the record
            if group.type() == "grouplayer" and group.uniqueId() in before_groups:
                group.setVisible(False)
        record["document"] = record_document(doc, photo, "selection")
        sel = doc.selection()
        (Path(SETTINGS["work"]) / "selection-mask.raw").write_bytes(bytes(sel.pixelData(0, 0, doc.width(),
                                                                                         doc.height())))
        record["selection_bounds"] = [sel.x(), sel.y(), sel.width(), sel.height()]
        doc.refreshProjection()
        projection = bytes(doc.pixelData(0, 0, doc.width(), doc.height()))
        (Path(SETTINGS["work"]) / "selection-projection.raw").write_bytes(projection)
        record["projection_file"] = "selection-projection.raw"

    if "timing" in wanted:  # the action, repeatedly, on the photo layer (benchmarks/bench_krita_plugin.py)
        runs = RESULT["scenarios"]["timing"] = []
        for _ in range(SETTINGS["repeats"]):
            doc.setActiveNode(photo)
            yield Wait(0.3)
            groups_before = len([n for n in doc.rootNode().childNodes() if n.type() == "grouplayer"])
            record = {}
            started = time.monotonic()
            app.action("gcp_colorize_layer").trigger()
            yield Wait(until=lambda: len([n for n in doc.rootNode().childNodes()
                                          if n.type() == "grouplayer"]) > groups_before or not session.busy,
                       what="the timed colorization")
            record["driver_trigger_to_group_s"] = time.monotonic() - started
            yield Wait(until=lambda: not session.busy, what="the session to finish")
            record.update(session_state(session))
            runs.append(record)

    if SETTINGS.get("screenshots"):
        yield Wait(0.5)
        out = Path(SETTINGS["screenshots"])
        out.mkdir(parents=True, exist_ok=True)
        docker.grab().save(str(out / "krita-docker.png"))
        window.qwindow().grab().save(str(out / "krita-window.png"))
        RESULT["screenshots"] = [str(out / "krita-docker.png"), str(out / "krita-window.png")]

    if "cancel" in wanted:  # a bigger job, cancelled from the docker as soon as it runs
        record = RESULT["scenarios"]["cancel"] = {}
        width, height = SETTINGS["cancel_canvas"]
        big = app.createDocument(width, height, "cancel", "RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc", 72.0)
        big_photo = big.createNode("Flat gray", "paintlayer")
        big.rootNode().addChildNode(big_photo, None)
        big_photo.setPixelData(bytes((128, 128, 128, 255)) * (width * height), 0, 0, width, height)
        window.addView(big)
        yield Wait(0.3)
        big.setActiveNode(big_photo)
        yield Wait(0.3)
        docker_widget(QWidget, "gcp_colorize_alternatives").setValue(SETTINGS["cancel_alternatives"])
        before = names(big)
        session.message = ""
        docker_widget(QWidget, "gcp_colorize_colorize_button").click()
        yield Wait(until=lambda: session.stage not in ("", "starting"), what="the job to start")
        record["stage_when_cancelled"] = session.stage
        docker_widget(QWidget, "gcp_colorize_cancel_button").click()
        yield Wait(until=lambda: not session.busy, what="the cancellation")
        yield Wait(0.5)
        record.update(session_state(session))
        record["before"], record["after"] = before, names(big)


def record_exception(kind, value, tb):
    """Replaces Krita's excepthook (a modal dialog that would hang the test): an exception
    in any Python slot is recorded, and the test fails on it."""
    RESULT.setdefault("exceptions", []).append("".join(traceback.format_exception(kind, value, tb)))


class Driver(Extension):
    def setup(self):
        sys.excepthook = record_exception
        Krita.instance().notifier().windowCreated.connect(lambda: QTimer.singleShot(1000, self.start))

    def createActions(self, window):
        pass

    def start(self):
        QTimer.singleShot(SETTINGS["timeout_s"] * 1000 + 60000, lambda: finish("the driver's overall timeout"))
        run_steps(scenarios())


Krita.instance().addExtension(Driver(Krita.instance()))
