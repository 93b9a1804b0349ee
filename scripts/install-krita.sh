#!/bin/sh
# Install Krita 5.1.5 (Debian 12) with what the GCP Colorize plugin and its host tests need:
# PyQt5 for pykrita (only a Recommends of krita), Xvfb + xauth for the GUI test, and Debian's
# zmq and msgpack for Krita's embedded system Python. Idempotent and quiet.
set -eu

PACKAGES="krita python3-pyqt5 xvfb xauth python3-zmq python3-msgpack"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "install-krita.sh: root (or sudo) is needed to install:$missing" >&2
    exit 1
fi

apt_install() {
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    $as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
# Fresh containers have no package lists, old ones may have stale lists: update on failure.
if ! apt_install 2>/dev/null; then
    $as_root apt-get update -qq
    apt_install
fi
echo "install-krita.sh: installed$missing"
