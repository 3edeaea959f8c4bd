#!/usr/bin/env bash
# The Variant codec against the real Godot 4.6.3 and 3.2.3: each binary prints var_to_bytes of one
# value of every type (plus nested and edge cases) and what bytes_to_var makes of hand-made
# inputs, valid and hostile (variants_g4.gd, variants_g3.gd); then the Rust test
# core/tests/variant_interop.rs reads those fresh captures and checks that our decoder gives each
# value, our encoder gives Godot's bytes, and our decoder accepts and refuses what Godot does.
#
# usage: tests/interop/variant/run.sh [--update]
#   --update   also copy the fresh captures over tests/interop/variant/captured/, which
#              `cargo test` checks without Godot
#
# Environment: MP_OUT (scratch and captures, default /tmp/multipeer-variant-interop),
# CARGO_TARGET_DIR (as cargo uses it). Needs root on a fresh machine (the Godot installers).
# Prints "variant interop: passed" or "variant interop: FAILED"; exit status 0 only on success.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${MP_OUT:-/tmp/multipeer-variant-interop}"
update=0
for a in "$@"; do
  case "$a" in
    --update) update=1 ;;
    *) echo "usage: $0 [--update]" >&2; exit 2 ;;
  esac
done

fail() { echo "variant interop: $*" >&2; echo "variant interop: FAILED"; exit 1; }

echo "== install Godot 3.2.3 and 4.6.x"
"$repo/tests/interop/godot/install_godot3.sh" || fail "install_godot3.sh failed"
"$repo/tests/interop/godot/install_godot4.sh" || fail "install_godot4.sh failed"

# Godot writes logs beside the script it runs, so the scripts run from a scratch copy.
rm -rf "$out"
mkdir -p "$out/g4" "$out/g3" "$out/captures"
cp "$here/variants_g4.gd" "$out/g4/"
cp "$here/variants_g3.gd" "$out/g3/"

# capture NAME DIR COMMAND...: runs one binary, keeps its ENC/DECIN/DEC lines.
capture() {
  local name="$1" dir="$2"
  shift 2
  echo "== capture $name: $*"
  (cd "$dir" && timeout 120 "$@") >"$out/$name.log" 2>&1 || fail "$name exited with $? (see $out/$name.log)"
  grep -E '^(ENC|DECIN|DEC)\|' "$out/$name.log" >"$out/captures/$name.txt" || true
  local enc dec
  enc="$(grep -c '^ENC|' "$out/captures/$name.txt" || true)"
  dec="$(grep -c '^DECIN|' "$out/captures/$name.txt" || true)"
  echo "   $enc encodings, $dec decodings"
  ((enc > 40 && dec > 15)) || fail "$name printed too little (see $out/$name.log)"
}

capture g4 "$out/g4" "$repo/tests/interop/godot/godot4" --headless -s variants_g4.gd
capture g3 "$out/g3" godot3-server -s variants_g3.gd
head -n1 "$out/g4.log" | sed 's/^/   /'
head -n1 "$out/g3.log" | sed 's/^/   /'

echo "== compare with the Rust codec (core/tests/variant_interop.rs)"
cd "$repo"
MP_VARIANT_CAPTURES="$out/captures" cargo test --locked -p multipeer --features alloc --test variant_interop \
  -- --nocapture || fail "the Rust side disagrees with Godot (see above)"

if ((update)); then
  cp "$out/captures/g4.txt" "$out/captures/g3.txt" "$here/captured/"
  echo "== updated $here/captured/"
fi
echo "variant interop: passed"
