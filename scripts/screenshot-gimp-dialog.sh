#!/usr/bin/env bash
# Takes a screenshot of the plug-in's dialog in real GIMP 3 (under Xvfb, inside the trixie
# root of build-gimp-root.sh): opens scikit-image's gray camera photo, starts Filters >
# Colors > GCP Colorize… interactively and captures the screen once the dialog is up.
# Usage: scripts/screenshot-gimp-dialog.sh [OUT.png]   (default docs/screenshots/gimp-dialog.png)
# No backend is needed: the dialog comes before the plug-in connects.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-docs/screenshots/gimp-dialog.png}")"
root="$(scripts/build-gimp-root.sh)"
work="$(mktemp -d /tmp/gimp-screenshot.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gimp3" "$work/home" "$(dirname "$out")"
echo "(show-welcome-dialog no)" > "$work/gimp3/gimprc"
.venv/bin/gcp-colorize install-plugin gimp --dest "$work/gimp3/plug-ins" >/dev/null
.venv/bin/python -c "
import sys; from PIL import Image; from skimage import data
Image.fromarray(data.camera()).save(sys.argv[1])" "$work/camera.png"

# Runs in GIMP's Python: show the photo, then run the plug-in as the menu item does.
cat > "$work/open-dialog.py" <<'EOF'
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(WORK + "/camera.png"))
Gimp.Display.new(image)
Gimp.displays_flush()
procedure = Gimp.get_pdb().lookup_procedure("plug-in-gcp-colorize")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", image.get_selected_drawables())
procedure.run(config)
EOF
sed -i "1i WORK = '$work'" "$work/open-dialog.py"

# Inside Xvfb: GIMP in the background; once the dialog is drawn, capture the screen as
# XWD and stop GIMP.
cat > "$work/capture.sh" <<'EOF'
set -euo pipefail
work="$1"
gimp-3.0 --no-splash --batch-interpreter=python-fu-eval -b - < "$work/open-dialog.py" > "$work/gimp.log" 2>&1 &
gimp=$!
for _ in $(seq 120); do
    dialog="$(xdotool search --onlyvisible --name '^GCP Colorize$' 2>/dev/null | head -n 1 || true)"
    [ -n "$dialog" ] && break
    sleep 0.5
done
if [ -z "$dialog" ]; then
    echo "the dialog did not appear; GIMP's output:" >&2; cat "$work/gimp.log" >&2; kill "$gimp"; exit 1
fi
sleep 2  # let GTK finish drawing (without a window manager the dialog stays where GTK puts it)
xwd -root -silent > "$work/screen.xwd"
kill "$gimp"
EOF
env HOME="$work/home" GIMP3_DIRECTORY="$work/gimp3" LANG=C.UTF-8 \
    scripts/in-gimp-root.sh --root "$root" --bind "$work" -- \
    xvfb-run -a -s "-screen 0 1280x800x24" bash "$work/capture.sh" "$work"

# GIMP itself converts the XWD capture to PNG.
cat > "$work/convert.py" <<EOF
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("$work/screen.xwd"))
Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path("$work/screen.png"), None)
EOF
env HOME="$work/home" GIMP3_DIRECTORY="$work/gimp3" LANG=C.UTF-8 \
    scripts/in-gimp-root.sh --root "$root" --bind "$work" -- \
    gimp-console-3.0 -i --quit --batch-interpreter=python-fu-eval -b - < "$work/convert.py" >/dev/null 2>&1
cp "$work/screen.png" "$out"
echo "$out"
