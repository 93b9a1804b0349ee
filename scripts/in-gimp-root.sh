#!/usr/bin/env bash
# Runs a command inside the GIMP trixie root (see build-gimp-root.sh) without leaving
# mounts behind: a private mount namespace gets /dev, /proc, /sys, a fresh /tmp and the
# directories given with --bind (each at the same path inside as outside), then chroots.
# The network namespace is shared, so the command reaches a backend on 127.0.0.1.
# Usage: scripts/in-gimp-root.sh [--root ROOT] [--bind DIR]... -- COMMAND [ARG]...
# The caller's environment passes through, with PATH reset to the root's.
set -euo pipefail

root="${GCP_GIMP_ROOT:-$HOME/.cache/gcp-colorize/gimp-trixie-root}"
binds=()
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$2"; shift 2 ;;
        --bind) binds+=("$(realpath "$2")"); shift 2 ;;
        --) shift; break ;;
        *) echo "in-gimp-root: unknown option $1 (usage: [--root R] [--bind DIR]... -- CMD)" >&2
           exit 2 ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "in-gimp-root: no command given" >&2
    exit 2
fi
if [ ! -f "$root/.gcp-colorize-root" ]; then
    echo "in-gimp-root: no finished GIMP root at $root (run scripts/build-gimp-root.sh)" >&2
    exit 2
fi

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo --preserve-env"

# Arguments of the inner script: root, number of binds, the binds, then the command.
exec $sudo_cmd unshare --mount --propagation private bash -euo pipefail -c '
    root="$1"; count="$2"; shift 2
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys" 2>/dev/null || mount --rbind /sys "$root/sys"
    mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
    for ((i = 0; i < count; i++)); do
        mkdir -p "$root$1"
        mount --bind "$1" "$root$1"
        shift
    done
    exec chroot "$root" /usr/bin/env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@"
' in-gimp-root "$root" "${#binds[@]}" "${binds[@]}" "$@"
