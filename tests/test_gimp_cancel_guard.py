"""The GIMP plug-in's cancel guard (plugin_gimp/cancel_guard.py) against a real backend
process: GIMP kills a plug-in whose progress the user cancels, and the guard must then
cancel the backend job at once (not after the backend's 30 s client timeout)."""

import os
import subprocess
import sys
import time
from pathlib import Path

from service_harness import running_backend

REPO = Path(__file__).resolve().parents[1]
# The plug-in imports `core` as a top-level package (installed next to it); here it comes
# from the source tree, so the guard process it starts finds it the same way.
PLUGIN_PATH = os.pathsep.join([str(REPO / "plugin_gimp"), str(REPO / "backend" / "gcp_colorize")])
PLUGIN_STAND_IN = """
import sys
import cancel_guard
from core.client import Client, PixelImage
client = Client.connect(sys.argv[1])
job = client.submit(PixelImage(bytes(32 * 32 * 4), 32, 32, "RGBA", "uint8"), alternatives=0)
with cancel_guard.guarding(client.connection, job.id):
    print(job.id, flush=True)
    job.wait()
print("finished", flush=True)
"""


def start_plugin_stand_in(backend):
    return subprocess.Popen([sys.executable, "-c", PLUGIN_STAND_IN, str(backend.connection_path)],
                            stdout=subprocess.PIPE, text=True, env={**backend.env, "PYTHONPATH": PLUGIN_PATH})


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_killing_the_plugin_process_cancels_its_running_job_at_once(tmp_path):
    with running_backend(tmp_path, "--stage-seconds", "5", "--client-timeout", "30") as backend:
        plugin = start_plugin_stand_in(backend)
        job_id = plugin.stdout.readline().strip()
        with backend.client() as client:
            assert wait_for(lambda: client.status()["running"] == job_id, 10), client.status()
            plugin.kill()  # what GIMP does when the user cancels the progress
            plugin.wait()
            assert wait_for(lambda: client.status()["running"] is None, 5), client.status()
        assert f"job {job_id} cancel requested" in backend.log()
        assert "no heartbeat" not in backend.log()


def test_a_job_that_finishes_is_not_cancelled(tmp_path):
    with running_backend(tmp_path, "--stage-seconds", "0.05") as backend:
        plugin = start_plugin_stand_in(backend)
        output, _ = plugin.communicate(timeout=60)
        assert plugin.returncode == 0 and output.split()[-1] == "finished", output
        time.sleep(0.5)  # a wrongly triggered guard would have sent its cancel by now
        assert "cancel requested" not in backend.log()
