"""The panel's settings, kept in kritarc (group "gcp_colorize") between sessions."""

from __future__ import annotations

from dataclasses import fields

from krita import Krita

from .core.hostcore import ColorizeSettings

GROUP = "gcp_colorize"


def load() -> ColorizeSettings:
    app = Krita.instance()
    names = [f.name for f in fields(ColorizeSettings)]
    return ColorizeSettings.from_strings({name: app.readSetting(GROUP, name, "") for name in names})


def save(settings: ColorizeSettings) -> None:
    app = Krita.instance()
    for name, value in settings.to_strings().items():
        app.writeSetting(GROUP, name, value)
