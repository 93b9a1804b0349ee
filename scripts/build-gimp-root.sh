#!/usr/bin/env bash
# Builds (or reuses) a Debian trixie root holding GIMP 3.0.4 with its Python plug-in
# support, for the GIMP host tests: Debian 12 only has GIMP 2.10, which has no Python.
# Usage: scripts/build-gimp-root.sh [ROOT]   (default $GCP_GIMP_ROOT or
#        ~/.cache/gcp-colorize/gimp-trixie-root); prints the root's path.
# Idempotent: a root finished with the same package list is reused as it is. Needs root
# (or sudo) for apt-get and mmdebstrap. The mirror is the Debian archive named in this
# machine's own apt sources.
set -euo pipefail

root="${1:-${GCP_GIMP_ROOT:-$HOME/.cache/gcp-colorize/gimp-trixie-root}}"
# GIMP's Python plug-in support is part of trixie's gimp package; python3-zmq/msgpack are
# what the plug-in's shared core imports; Xvfb, xauth, xdotool (keys for the undo test),
# x11-apps and x11-utils (xwd, xwininfo: the dialog screenshot) serve GIMP's GUI tests.
packages="gimp,python3-zmq,python3-msgpack,xvfb,xauth,xdotool,x11-apps,x11-utils"
stamp="$root/.gcp-colorize-root"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$packages" ]; then
    echo "$root"
    exit 0
fi

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

# The first URI ending in /debian (not debian-security) in either apt sources format.
mirror="$(
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null \
    | grep -Ev '^[[:space:]]*#' | grep -Eo '(https?|file)://[^ ]*/debian/?( |$)' | sed -E 's#/? *$##' | head -n 1 || true
)"
if [ -z "$mirror" ]; then
    echo "build-gimp-root: no Debian archive URI (ending in /debian) in /etc/apt/sources*" >&2
    exit 1
fi

if ! command -v mmdebstrap >/dev/null; then
    # The lock timeout lets this wait for another apt-get (e.g. the Krita install).
    $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update -qq
    $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        mmdebstrap >/dev/null
fi

# Build beside the final place and move it in at the end, so that an interrupted build
# never leaves a half root that looks finished.
partial="$root.partial"
$sudo_cmd rm -rf "$partial"
mkdir -p "$(dirname "$root")"
echo "build-gimp-root: building trixie root from $mirror (about a minute, ~850 MB)" >&2
$sudo_cmd mmdebstrap --quiet --variant=apt --include="$packages" \
    --aptopt='APT::Install-Recommends "false"' trixie "$partial" "$mirror" >&2
$sudo_cmd rm -rf "$root"
$sudo_cmd mv "$partial" "$root"
echo "$packages" | $sudo_cmd tee "$stamp" >/dev/null
echo "$root"
