#!/usr/bin/env bash
# Installs Debian sid's `godot3-server` (3.6.x, the last Godot 3 line) into the root that
# install_godot4.sh builds, for the `godot36` wrapper beside this script; Godot 3.2.3 stays the
# host's (install_godot3.sh), so both 3.x ends of the line run side by side.
#
# usage: tests/interop/godot/install_godot36.sh
#
# Environment: MP_GODOT4_ROOT (the root, default /var/tmp/multipeer-godot4), and what
# install_godot4.sh reads when it has to build the root first.
#
# Inside a private mount namespace (mounts vanish with it) it runs chroot apt-get install
# --no-install-recommends godot3-server, from the package lists the root already has, and
# runs apt-get update only when that fails. Idempotent: with the stamp present and the binary
# answering --version, it exits at once. Needs root.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="${MP_GODOT4_ROOT:-/var/tmp/multipeer-godot4}"
root="${root%/}"
stamp="$root/.multipeer-godot36-installed"

if [ -f "$stamp" ]; then
  if v="$(MP_GODOT4_ROOT="$root" "$here/godot36" --version 2>/dev/null | tail -n1)" && [ -n "$v" ]; then
    echo "godot36 already installed in $root: $v"
    exit 0
  fi
  echo "[godot36] stamp present but the binary does not run; reinstalling" >&2
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_godot36.sh: root is needed (chroot, mount namespace)" >&2
  exit 1
fi
# The root and its package lists come from the Godot 4 installer (idempotent).
MP_GODOT4_ROOT="$root" "$here/install_godot4.sh"

start=$(date +%s)
echo "[godot36] apt-get install --no-install-recommends godot3-server (inside $root)"
unshare --mount --propagation private /bin/sh -euc '
  r="$1"
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive /bin/sh -euc "
      o=\"-q -y -o Acquire::Check-Valid-Until=false\"
      apt-get \$o install --no-install-recommends godot3-server >/dev/null ||
        { apt-get -q -o Acquire::Check-Valid-Until=false update >/dev/null &&
          apt-get \$o install --no-install-recommends godot3-server >/dev/null; }
      apt-get clean
    "
' sh "$root"

v="$(MP_GODOT4_ROOT="$root" "$here/godot36" --version 2>/dev/null | tail -n1 || true)"
case "$v" in
  3.6*) ;;
  *) echo "install_godot36.sh: the installed binary does not report a 3.6 version ('$v')" >&2; exit 1 ;;
esac
echo "$v installed=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$stamp"
echo "[godot36] ok: godot3-server $v in $root, $(( $(date +%s) - start )) s"
