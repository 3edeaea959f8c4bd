#!/usr/bin/env bash
# Installs Debian bookworm's headless Godot 3.2.3 (`godot3-server`) with apt.
#
# usage: tests/interop/godot/install_godot3.sh
#
# Idempotent: when `godot3-server --version` already reports 3.2.3 it only prints that and
# exits 0 (well under a second). Otherwise it needs root and a Debian package mirror.
# `apt-get update` is run only when apt does not know the package yet.
set -euo pipefail

want="3.2.3"
have_version() { godot3-server --version 2>/dev/null | grep -Eo '^[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n1; }

if command -v godot3-server >/dev/null 2>&1; then
  v="$(have_version || true)"
  if [ "$v" = "$want" ]; then
    echo "godot3-server $v already installed ($(command -v godot3-server))"
    exit 0
  fi
  echo "godot3-server present but reports '${v:-nothing}', expected $want; reinstalling" >&2
fi

if [ "$(id -u)" != 0 ]; then
  echo "install_godot3.sh: root is needed to apt-get install godot3-server" >&2
  exit 1
fi

start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
# An empty Candidate means the package lists were never fetched on this machine.
if ! apt-cache policy godot3-server 2>/dev/null | grep -Eq 'Candidate: [0-9]'; then
  echo "[godot3] apt-get update"
  apt-get update -qq
fi
echo "[godot3] apt-get install godot3-server"
apt-get install -y -qq --no-install-recommends godot3-server >/dev/null

v="$(have_version || true)"
if [ "$v" != "$want" ]; then
  echo "install_godot3.sh: installed godot3-server reports '${v:-nothing}', expected $want" >&2
  exit 1
fi
echo "[godot3] ok: godot3-server $v in $(( $(date +%s) - start )) s"
