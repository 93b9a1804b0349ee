"""The Krita extension: the `gcp_colorize_layer` action (Tools > Scripts, assignable
shortcut) and stopping a backend this plugin started when Krita quits."""

from __future__ import annotations

from krita import Extension, Krita

from . import session

ACTION_ID = "gcp_colorize_layer"


class ColorizeExtension(Extension):
    def setup(self):
        Krita.instance().notifier().applicationClosing.connect(lambda: session.instance().shutdown_started_backend())

    def createActions(self, window):
        action = window.createAction(ACTION_ID, "Colorize Layer (GCP Colorize)", "tools/scripts")
        action.setToolTip("Colorize the active layer with the GCP Colorize settings; results go to a new group")
        action.triggered.connect(lambda: session.instance().colorize(Krita.instance().activeDocument()))
