"""Cancels a backend job when the GIMP plug-in process dies before the job has finished.

When the user cancels a plug-in's progress, GIMP kills the plug-in process (SIGKILL), so
the plug-in can never send the cancel itself, and the backend would only notice the
silence after its client timeout. So while the plug-in waits for a job, a small guard
process in its own session (GIMP may kill the plug-in's process group) holds the read end
of a pipe: the plug-in writes the connection details and the job id, then "done" when the
wait is over. End of file without "done" means the plug-in was killed: the guard cancels
the job.

Run as a script by ``guarding``; imports the ``core`` package next to it.
"""

import contextlib
import json
import os
import subprocess
import sys

DONE = b"done\n"


@contextlib.contextmanager
def guarding(info, job_id):
    """While the block runs, a guard cancels job ``job_id`` of the backend ``info`` (a
    core.connection.ConnectionInfo) if this process dies."""
    read_fd, write_fd = os.pipe()
    try:
        subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=read_fd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    finally:
        os.close(read_fd)
    with os.fdopen(write_fd, "wb") as pipe:
        # The key travels through the pipe, never on a command line others can read.
        pipe.write(json.dumps({"connection": info.to_json(), "job": job_id}).encode() + b"\n")
        pipe.flush()
        try:
            yield
        finally:
            pipe.write(DONE)


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from core.client import Client, ClientError
    from core.connection import ConnectionInfo

    stream = sys.stdin.buffer
    setup = json.loads(stream.readline())
    if stream.read() == DONE:  # blocks until the plug-in closes the pipe or dies
        return 0
    try:
        with Client(ConnectionInfo.from_json(setup["connection"])) as client:
            client.cancel_job(setup["job"])
    except ClientError:
        return 1  # the backend is gone too: nothing left to cancel
    return 0


if __name__ == "__main__":
    sys.exit(main())
