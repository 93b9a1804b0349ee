"""Shared pytest fixtures. pytest puts this folder on sys.path, so test modules in
sub-folders (tests/host/) import the harness modules kept here (service_harness, ...)."""

import pytest

from service_harness import running_backend


@pytest.fixture(scope="module")
def tiny_backend(tmp_path_factory):
    """A real `gcp-colorize serve --weights random:tiny` subprocess with its own runtime
    dir (``backend.env["XDG_RUNTIME_DIR"]``), shared by the tests of one module."""
    with running_backend(tmp_path_factory.mktemp("backend"), model="random:tiny") as backend:
        yield backend
