#!/usr/bin/env bash
# Builds the multipeer GDExtension and lays out the addon Godot developers copy into their
# project: DEST/addons/multipeer/{multipeer.gdextension, bin/<library>}.
#
# usage: io-godot/package.sh [--debug] [--target TRIPLE] [--features LIST] [DEST]
#   DEST      where `addons/` is created (default: $CARGO_TARGET_DIR/godot-addon, else
#             target/godot-addon); copy DEST/addons into the project's root
#   --debug   a debug build (default: release)
#   --target  cross-compile for a Rust target triple (the library is named for it)
#   --features  crate features (tests use fault-injection; never ship it)
# Prints the addon's path and the build time.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
profile=release
target=""
features=""
dest=""
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --target) target="$2"; shift ;;
    --features) features="$2"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) dest="$1" ;;
  esac
  shift
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
dest="${dest:-$CARGO_TARGET_DIR/godot-addon}"
args=(build --locked --manifest-path "$HERE/Cargo.toml")
[ "$profile" = release ] && args+=(--release)
[ -n "$target" ] && args+=(--target "$target")
[ -n "$features" ] && args+=(--features "$features")
started=$(date +%s)
(cd "$REPO" && cargo "${args[@]}")
built=$(( $(date +%s) - started ))
out="$CARGO_TARGET_DIR/${target:+$target/}$profile"
triple="${target:-$(rustc -vV | sed -n 's/^host: //p')}"
case "$triple" in
  x86_64-*linux*) src=libmultipeer_godot.so; lib=libmultipeer_godot.linux.x86_64.so ;;
  aarch64-*linux*) src=libmultipeer_godot.so; lib=libmultipeer_godot.linux.arm64.so ;;
  x86_64-pc-windows-*) src=multipeer_godot.dll; lib=multipeer_godot.windows.x86_64.dll ;;
  *-apple-darwin) src=libmultipeer_godot.dylib; lib=libmultipeer_godot.macos.dylib ;;
  *) echo "package.sh: no library name for $triple" >&2; exit 1 ;;
esac
addon="$dest/addons/multipeer"
mkdir -p "$addon/bin"
cp "$HERE/addons/multipeer/multipeer.gdextension" "$addon/"
cp "$out/$src" "$addon/bin/$lib"
echo "addon: $addon ($profile, $triple)"
echo "godot extension build time: ${built} s"
