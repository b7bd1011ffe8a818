#!/usr/bin/env bash
# Build the desktop app lab staff install, from a clean virtual environment with a wheel
# install (not editable): dist/MicroApp (one folder), its self-test, its size and build time,
# then the installer: a .deb on Linux (dpkg-deb; desktop entry and icon), a .dmg on macOS.
# Windows: scripts/build_installer.ps1 and installer/MicroApp.iss.
#
#   scripts/build_installer.sh            # build, self-test, package
#   scripts/build_installer.sh --install  # and install the .deb for real (apt-get), self-test it
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VERSION=$(python3 -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
BUILD=${BUILD_DIR:-$ROOT/build/installer}
start=$(date +%s)

echo "== clean environment in $BUILD/venv"
rm -rf "$BUILD" dist/MicroApp dist/MicroApp.app
python3 -m venv "$BUILD/venv"
PY="$BUILD/venv/bin/python"
"$PY" -m pip install -q --upgrade pip wheel
echo "== wheel install of micro_app $VERSION (not editable)"
"$PY" -m pip wheel -q --no-deps -w "$BUILD/wheel" .
"$PY" -m pip install -q "$BUILD"/wheel/micro_app-*.whl "pyinstaller>=6.10"
# the demo's stage of real cells (PBC test-split crops, CC BY 4.0) is committed in
# resources/demo (scripts/make_demo_stage.py builds it) and bundled with resources/
if [ ! -f resources/demo/stage.json ]; then
  echo "resources/demo/stage.json is missing: restore it from git or rebuild it with" \
    "scripts/make_demo_stage.py --pbc ../shared/data/pbc --out resources/demo" >&2
  exit 1
fi
echo "== PyInstaller"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist \
  --workpath "$BUILD/work" build_installer.spec
if [ "$(uname)" = "Darwin" ]; then APP=dist/MicroApp.app/Contents/MacOS/MicroApp; else APP=dist/MicroApp/MicroApp; fi
echo "== self-test of the built app"
QT_QPA_PLATFORM=offscreen MICRO_APP_CONFIG_DIR="$BUILD/cfg" MICRO_APP_LOG_DIR="$BUILD/log" \
  MICRO_APP_DATA_DIR="$BUILD/data" "$APP" --selftest
built=$(date +%s)
echo "bundle: $(du -sh dist/MicroApp | cut -f1) in dist/MicroApp, built in $((built - start)) s"

if [ "$(uname)" = "Darwin" ]; then
  echo "== .dmg"
  hdiutil create -volname MicroApp -srcfolder dist/MicroApp.app -ov -format UDZO "dist/MicroApp-$VERSION.dmg"
  echo "installer: dist/MicroApp-$VERSION.dmg ($(du -sh "dist/MicroApp-$VERSION.dmg" | cut -f1))"
  exit 0
fi

echo "== .deb"
ARCH=$(dpkg --print-architecture)
PKG="$BUILD/deb"
rm -rf "$PKG"
mkdir -p "$PKG/DEBIAN" "$PKG/opt/micro-app" "$PKG/usr/bin" "$PKG/usr/share/applications"
cp -a dist/MicroApp/. "$PKG/opt/micro-app/"
ln -s /opt/micro-app/MicroApp "$PKG/usr/bin/micro-app-desktop"
for n in 16 32 48 64 128 256 512; do
  mkdir -p "$PKG/usr/share/icons/hicolor/${n}x${n}/apps"
  cp "resources/icons/micro_app_$n.png" "$PKG/usr/share/icons/hicolor/${n}x${n}/apps/micro-app.png"
done
cat > "$PKG/usr/share/applications/micro-app.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=MicroApp
GenericName=White blood cell counter
Comment=Live white-blood-cell detection and classification on a microscope camera
Exec=/opt/micro-app/MicroApp
Icon=micro-app
Terminal=false
Categories=Science;Biology;MedicalSoftware;
DESKTOP
SIZE_KB=$(du -sk "$PKG/opt" | cut -f1)
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: micro-app
Version: $VERSION
Architecture: $ARCH
Maintainer: micro_app developers <micro-app@example.org>
Installed-Size: $SIZE_KB
Depends: libegl1, libgl1, libxkbcommon0, libfontconfig1, libdbus-1-3, libglib2.0-0, libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1
Section: science
Priority: optional
Description: Live white-blood-cell classification on a microscope camera
 Shows the microscope camera's live image, finds the white blood cells, classifies them
 with a CNN (PBC dataset, CC BY 4.0) and keeps the slide's differential count; exports
 annotated snapshots and a slide report. Decision support only.
CONTROL
DEB="dist/micro-app_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zgzip -z1 --build "$PKG" "$DEB" >/dev/null
echo "installer: $DEB ($(du -sh "$DEB" | cut -f1)); total $(( $(date +%s) - start )) s"

if [ "${1:-}" = "--install" ]; then
  echo "== apt-get install ./$DEB, then the installed app's self-test"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -qq "./$DEB" >/dev/null
  QT_QPA_PLATFORM=offscreen MICRO_APP_CONFIG_DIR="$BUILD/cfg2" MICRO_APP_LOG_DIR="$BUILD/log2" \
    MICRO_APP_DATA_DIR="$BUILD/data2" /opt/micro-app/MicroApp --selftest
fi
