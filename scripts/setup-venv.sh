#!/usr/bin/env bash
# Creates (or reuses) the project's virtualenv in .venv and installs the package with the
# extras given as arguments (e.g. "demo", "test,eval"). torch is pinned: on these machines
# `torch==2.13.0` is a CPU build from local disk, while an unpinned torch would pull a
# multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    if ! python3 -m venv .venv 2>/dev/null; then
        echo "python3 -m venv failed; installing Debian's python3-venv" >&2
        rm -rf .venv
        $(command -v sudo || true) apt-get install -y -q python3-venv >/dev/null
        python3 -m venv .venv
    fi
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0 -e "$spec"
