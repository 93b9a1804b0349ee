"""GCP Colorize for Krita: colorize a layer, get vivid and diverse alternatives as new layers.

The model runs in a separate backend process (`gcp-colorize serve`); this plugin reads the
active layer, talks to the backend through the shared client library in ``core/`` (copied
here by `gcp-colorize install-plugin krita`) and inserts the results."""

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from .docker import ColorizeDocker
from .extension import ColorizeExtension

DOCKER_ID = "gcp_colorize_docker"

Krita.instance().addExtension(ColorizeExtension(Krita.instance()))
Krita.instance().addDockWidgetFactory(
    DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, ColorizeDocker))
