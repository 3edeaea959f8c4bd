#!/usr/bin/env bash
# Installs Autobahn|Testsuite (`wstest`) for tests/autobahn/run.sh.
#
# wstest 25.10.1 only runs on CPython 2.7, which Debian bookworm no longer ships. We fetch the
# bullseye .debs of python2.7 (and the two libraries bookworm lacks: libssl1.1, libffi7) with a
# private apt configuration (own sources list, lists dir and cache, so the system's apt state is
# left alone), unpack them with `dpkg -x` under tests/.tools/py27/root, bootstrap pip 20.3.4 there
# and install the pinned PyPI set that wstest 25.10.1 was released against.
#
# Idempotent: when tests/.tools/py27 already holds this exact pin set and wstest starts, it exits
# at once. Set AUTOBAHN_REINSTALL=1 to rebuild from scratch.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$(cd "$HERE/.." && pwd)/.tools/py27"
ROOT="$TOOLS/root"
APT="$TOOLS/apt"
WHEELS="$TOOLS/bootstrap"
PY="$ROOT/usr/bin/python2.7"
LIBDIR="$ROOT/usr/lib/x86_64-linux-gnu"
STAMP="$TOOLS/installed.txt"

DEBS=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib libffi7 libssl1.1)
BOOTSTRAP=(pip==20.3.4 setuptools==44.1.1 wheel==0.37.1)
# Upstream autobahntestsuite's requirements for the autobahn 0.10.9 line, without the
# 'accelerate' extra (wsaccel is built below; ujson is not needed); every pin has a cp27mu
# wheel or is pure.
PINS=(txaio==2.1.0 incremental==16.10.1 pyOpenSSL==19.1.0 cryptography==3.3.2
      Twisted==19.10.0 zope.interface==4.6.0 jinja2==2.11.3 markupsafe==1.1.1
      Werkzeug==1.0.1 klein==17.10.0 service_identity==18.1.0 unittest2==1.1.0
      six==1.16.0 "autobahn[twisted]==0.10.9" autobahntestsuite==25.10.1
      # transitive dependencies, pinned to what the set above resolves to, so reruns match
      Automat==22.10.0 PyHamcrest==1.10.1 attrs==21.4.0 cffi==1.15.1 constantly==15.1.0
      enum34==1.1.10 hyperlink==21.0.0 idna==2.10 ipaddress==1.0.23 linecache2==1.0.0
      pyasn1==0.5.1 pyasn1-modules==0.3.0 pycparser==2.21 traceback2==1.4.0 typing==3.10.0.0)
# Upstream's 'accelerate' extra, built here from its sdist (generated C inside) with gcc against
# bullseye's Python 2.7 headers: without it wstest validates UTF-8 and masks frames byte by byte
# in Python, five times slower on sections 12 and 13 (12.1.10: 27 s, with it 5 s).
WSACCEL=wsaccel==0.6.2
WANT="debs: ${DEBS[*]} | bootstrap: ${BOOTSTRAP[*]} | pins: ${PINS[*]} | $WSACCEL"

say() { printf '[autobahn-install] %s\n' "$*"; }

if [[ "$(uname -m)" != x86_64 ]]; then
    say "only x86_64 is supported (the .debs and cp27mu wheels are amd64)" >&2
    exit 2
fi

if [[ "${AUTOBAHN_REINSTALL:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] \
    && "$HERE/wstest" -a >/dev/null 2>&1; then
    say "already installed in $TOOLS: $("$HERE/wstest" -a 2>&1 | tail -n 1)"
    exit 0
fi

START=$SECONDS
rm -rf "$TOOLS"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs" "$ROOT" "$WHEELS"

# 1. Python 2.7 from bullseye, through the Debian mirror this machine already uses.
mirror=""
if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    mirror="$(awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
fi
if [[ -z "$mirror" && -r /etc/apt/sources.list ]]; then
    mirror="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [[ -r "$keyring" ]]; then
    echo "deb [signed-by=$keyring] $mirror bullseye main" >"$APT/sources.list"
else
    echo "deb $mirror bullseye main" >"$APT/sources.list"
fi
apt_opts=(
    -o "Dir::Etc::SourceList=$APT/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$APT/lists"
    -o "Dir::Cache=$APT/cache"
    -o "Dir::Cache::Archives=$APT/cache/archives"
    -o "Debug::NoLocking=true"
    -o "Acquire::Retries=3"
    -o "APT::Sandbox::User=root"
)
say "fetching bullseye package lists from $mirror (private apt state in $APT)"
timeout 300 apt-get "${apt_opts[@]}" -qq update
say "downloading ${DEBS[*]}"
(cd "$APT/debs" && timeout 300 apt-get "${apt_opts[@]}" -qq download "${DEBS[@]}")
for deb in "$APT"/debs/*.deb; do
    dpkg -x "$deb" "$ROOT"
done
# The interpreter derives sys.prefix from its own location; only the two bullseye-only
# shared libraries need the loader path.
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$PY" -c 'import sys, ssl, ctypes; assert sys.version_info[:2] == (2, 7)'
say "python: $("$PY" --version 2>&1)"

# 2. pip for Python 2.7: let Python 3's pip fetch the last py2-capable wheels, then run pip
#    straight from its own wheel to install itself.
if ! python3 -m pip --version >/dev/null 2>&1; then
    say "python3 -m pip is needed to fetch the pip 20.3.4 wheel (apt-get install python3-pip)" >&2
    exit 2
fi
say "fetching ${BOOTSTRAP[*]}"
timeout 300 python3 -m pip download -q --disable-pip-version-check --no-deps \
    --only-binary :all: --python-version 2.7 --implementation py --abi none \
    "${BOOTSTRAP[@]}" -d "$WHEELS"
"$PY" "$WHEELS/pip-20.3.4-py2.py3-none-any.whl/pip" install -q --no-warn-script-location \
    --disable-pip-version-check --no-python-version-warning --no-index --find-links "$WHEELS" "${BOOTSTRAP[@]}"

# 3. The pinned wstest set. pip reports one known, harmless conflict (autobahntestsuite's
#    metadata wants setuptools==44.0.0); keep its other output.
say "installing ${#PINS[@]} pinned packages from PyPI (log: $TOOLS/pip-install.log)"
log="$TOOLS/pip-install.log"
if ! timeout 600 "$PY" -m pip install --no-warn-script-location --disable-pip-version-check \
        --no-python-version-warning "${PINS[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    say "pip install failed" >&2
    exit 1
fi

# 4. wsaccel: the headers come from bullseye's libpython2.7-dev, unpacked aside and removed.
if command -v gcc >/dev/null; then
    say "building $WSACCEL (C UTF-8 validator and masker for wstest)"
    build="$TOOLS/wsaccel-build"
    rm -rf "$build"
    mkdir -p "$build"
    (cd "$APT/debs" && timeout 300 apt-get "${apt_opts[@]}" -qq download libpython2.7-dev)
    dpkg -x "$APT"/debs/libpython2.7-dev_*.deb "$build/headers"
    timeout 300 "$PY" -m pip download -q --disable-pip-version-check --no-python-version-warning \
        --no-deps --no-binary :all: "$WSACCEL" -d "$build"
    tar -xzf "$build"/wsaccel-*.tar.gz -C "$build"
    site="$("$PY" -c 'import autobahn, os; print(os.path.dirname(os.path.dirname(autobahn.__file__)))')"
    mkdir -p "$site/wsaccel"
    cp "$build"/wsaccel-*/wsaccel/__init__.py "$site/wsaccel/"
    for module in utf8validator xormask; do
        gcc -shared -fPIC -O2 -fno-strict-aliasing -w -I"$build/headers/usr/include/python2.7" \
            -I"$build/headers/usr/include" "$build"/wsaccel-*/wsaccel/$module.c -o "$site/wsaccel/$module.so"
    done
    rm -rf "$build" "$APT"/debs/libpython2.7-dev_*.deb
    # autobahn picks the C classes up by itself when they import.
    "$PY" -c 'from autobahn.websocket.utf8validator import Utf8Validator as U
from autobahn.websocket.xormasker import createXorMasker as X
assert U.__module__.startswith("wsaccel") and X.__module__.startswith("wsaccel"), (U.__module__, X.__module__)'
else
    say "no gcc: wstest runs without wsaccel, about five times slower on sections 12 and 13" >&2
fi

"$HERE/wstest" -a
echo "$WANT" >"$STAMP"
say "installed in $((SECONDS - START)) s"
