#!/usr/bin/env bash
# Builds a minimal Debian sid root holding Debian's `godot` 4.6.x package, outside the repository,
# for the `godot4` wrapper beside this script.
#
# usage: tests/interop/godot/install_godot4.sh [--force]
#
# Environment:
#   MP_GODOT4_ROOT     where the root lives (default /var/tmp/multipeer-godot4); must be absolute
#                      and outside this repository
#   MP_DEBIAN_MIRROR   Debian mirror URI (default: the first non-security Debian URI found in this
#                      machine's apt sources, else http://deb.debian.org/debian)
#   MP_GODOT4_SUITE    Debian suite (default sid: the suite that ships godot 4.6.x)
#
# Steps: apt-get install debootstrap (host, if missing); debootstrap --variant=minbase; then,
# inside a private mount namespace (mounts vanish with the namespace, nothing to unmount),
# chroot apt-get install --no-install-recommends godot. A stamp file records the version.
# Idempotent: with the stamp present and the binary answering --version, it exits at once.
# --force deletes the root and starts over. Needs root and about 1 GB of disk.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="${MP_GODOT4_ROOT:-/var/tmp/multipeer-godot4}"
suite="${MP_GODOT4_SUITE:-sid}"
stamp="$root/.multipeer-godot4-installed"
force=0
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
  esac
done

case "$root" in
  /?*) ;;
  *) echo "MP_GODOT4_ROOT must be an absolute path other than /" >&2; exit 2 ;;
esac
root="${root%/}"
repo="$(cd "$here/../../.." && pwd)"
case "$root/" in
  "$repo"/*) echo "MP_GODOT4_ROOT ($root) must be outside the repository ($repo)" >&2; exit 2 ;;
esac

# Fast path: already installed and working.
if [ "$force" = 0 ] && [ -f "$stamp" ]; then
  if v="$(MP_GODOT4_ROOT="$root" "$here/godot4" --version 2>/dev/null | tail -n1)" && [ -n "$v" ]; then
    echo "godot4 already installed in $root: $v"
    exit 0
  fi
  echo "[godot4] stamp present but the binary does not run; reinstalling" >&2
fi

if [ "$(id -u)" != 0 ]; then
  echo "install_godot4.sh: root is needed (debootstrap, chroot, mount namespace)" >&2
  exit 1
fi

start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }
export DEBIAN_FRONTEND=noninteractive

pick_mirror() {
  local f u
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # One-line "deb URI suite" entries and deb822 "URIs:" entries alike.
    u="$( (grep -Ev '^[[:space:]]*#' "$f" | grep -Eo '[a-z]+://[^[:space:]]+' \
      | grep -E '/debian/?$' | grep -v -- '-security' | head -n1) 2>/dev/null || true)"
    if [ -n "$u" ]; then echo "${u%/}"; return 0; fi
  done
  return 1
}
mirror="${MP_DEBIAN_MIRROR:-}"
[ -n "$mirror" ] || mirror="$(pick_mirror || true)"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "[godot4] apt-get install debootstrap"
  if ! apt-cache policy debootstrap 2>/dev/null | grep -Eq 'Candidate: [0-9]'; then
    apt-get update -qq
  fi
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

if grep -q " $root/" /proc/mounts; then
  echo "install_godot4.sh: something is mounted below $root; refusing to touch it" >&2
  exit 1
fi
if [ "$force" = 1 ]; then
  rm -rf --one-file-system "$root"
fi
# debootstrap removes $root/debootstrap when it finishes, so its presence means an
# interrupted run: start that part again from scratch.
if [ -d "$root/debootstrap" ]; then
  echo "[godot4] removing an unfinished debootstrap in $root"
  rm -rf --one-file-system "$root"
fi
mkdir -p "$(dirname "$root")"
log="$root.debootstrap.log"
if [ ! -x "$root/usr/bin/apt-get" ]; then
  echo "[godot4] debootstrap --variant=minbase $suite $root $mirror (log: $log)"
  if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    exit 1
  fi
  echo "[godot4] debootstrap finished after $(elapsed)"
fi

# No daemons may start from maintainer scripts inside the root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

echo "[godot4] apt-get install --no-install-recommends godot (inside $root)"
unshare --mount --propagation private /bin/sh -euc '
  r="$1"
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive /bin/sh -euc "
      apt-get -q -o Acquire::Check-Valid-Until=false update >/dev/null
      apt-get -q -y -o Acquire::Check-Valid-Until=false install --no-install-recommends godot >/dev/null
      apt-get clean
    "
' sh "$root"

v="$(MP_GODOT4_ROOT="$root" "$here/godot4" --version 2>/dev/null | tail -n1 || true)"
case "$v" in
  4.*) ;;
  *) echo "install_godot4.sh: the installed binary does not report a 4.x version ('$v')" >&2; exit 1 ;;
esac
echo "$v suite=$suite mirror=$mirror installed=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$stamp"
echo "[godot4] ok: godot $v in $root ($(du -sh --one-file-system "$root" | cut -f1)), $(elapsed)"
