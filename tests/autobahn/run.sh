#!/usr/bin/env bash
# Runs Autobahn|Testsuite against multipeer's WebSocket server and client, both directions,
# on loopback only, and judges the reports (tests/autobahn/check_reports.py).
#
#   server: our `ws_echo_server` on a free 127.0.0.1 port, wstest `fuzzingclient` against it
#   client: wstest `fuzzingserver` (web UI off) on a free port, our `ws_autobahn_client` against it
#
# Passing means every case has behavior and behaviorClose in {OK, NON-STRICT, INFORMATIONAL},
# and every NON-STRICT case is explained in non-strict.txt. Sections 12 and 13 are
# permessage-deflate (RFC 7692): our binaries run with --permessage-deflate, so the extension is
# negotiated where wstest offers (12.*, 13.*) or accepts it; sections 1-10 never offer it.
#
# usage: tests/autobahn/run.sh [--no-build] [--only server|client] [--all | --cases '1.*,7.1.*']
#                              [--summary FILE] [--reports DIR]
#   --no-build   use the release binaries already built
#   --only       run one direction
#   --all        every case of every section (517 per direction, about 15 minutes each here:
#                wstest compresses and inflates in CPython 2.7); writes tests/autobahn/SUMMARY.md
#   --cases      comma-separated wstest case patterns
#   default      sections 1-10 whole and a subset of 12 and 13 (cases 1-4 and 11 of every
#                subsection: each negotiation, short and fragmented messages; about 30 s per
#                direction), what CI runs; its summary goes to the reports dir
#   --summary    where to write the Markdown summary
#   --reports    where reports and logs go (default tests/reports/autobahn; emptied first); runs
#                sharing a reports dir wait for each other through DIR.lock
# environment:
#   AUTOBAHN_SERVER_CMD  command for the server under test instead of ws_echo_server; it gets
#                        the listen address (127.0.0.1:0) as last argument and must print
#                        `listening <addr>` as its first line on stdout, then echo messages
#                        (ours runs with --permessage-deflate; a replacement should negotiate
#                        it too, or sections 12 and 13 fail)
#   AUTOBAHN_SERVER_LABEL  how the summary names that server (e.g. "multipeer-mio plain server
#                        (`ws_echo_mio`)", which .ci/run's autobahn step also runs)
#   AUTOBAHN_CLIENT_CMD  command for the client under test instead of ws_autobahn_client; it gets
#                        `<base_url> <agent>` and must drive /getCaseCount, /runCase, /updateReports
#   AUTOBAHN_TIMEOUT     seconds allowed for each direction (default 1200, with --all 2400)
#
# Reports (JSON and HTML) go to tests/reports/autobahn/{servers,clients}/, logs beside them.
# The last line is `autobahn: N passed, M failed`; the exit status is 0 only when M is 0.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
REPORTS="$REPO/tests/reports/autobahn"
WSTEST="$HERE/wstest"
AGENT=multipeer
# Sections 12 and 13 (permessage-deflate) in full take wstest about 15 minutes per direction
# here, mostly in CPython compressing and inflating 1000 messages of up to 128 KiB per case:
# CI runs the first four cases (16 to 128-byte messages) and the first fragmented one of every
# subsection, which covers every parameter set wstest negotiates; --all runs everything.
# Exact ids: wstest matches a pattern with `*` as a prefix ("12.*.1" also takes 12.1.10-18).
DEFAULT_CASES="$(python3 -c 'import json
subsections = ["12.%d" % i for i in range(1, 6)] + ["13.%d" % i for i in range(1, 8)]
print(json.dumps(["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]
                 + ["%s.%d" % (s, n) for s in subsections for n in (1, 2, 3, 4, 11)]))')"
EXCLUDE='[]'
TIMEOUT="${AUTOBAHN_TIMEOUT:-1200}"
# --all: sections 12 and 13 alone take wstest about 15 minutes per direction here.

build=1
only=""
cases_arg=""
all=0
summary=""
while (($#)); do
    case "$1" in
        --no-build) build=0 ;;
        --only) only="${2:?--only needs server or client}"; shift ;;
        --cases) cases_arg="${2:?--cases needs patterns}"; shift ;;
        --all) all=1 ;;
        --summary) summary="${2:?--summary needs a file}"; shift ;;
        --reports) REPORTS="${2:?--reports needs a directory}"; shift ;;
        -h | --help) sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$only" in "" | server | client) ;; *) echo "run.sh: --only server|client" >&2; exit 2 ;; esac

say() { printf '[autobahn] %s\n' "$*"; }

# --- processes we start, stopped by pid on every exit path -----------------------------------
started=()
stop_pid() {
    local pid="$1" i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${started[@]}"; do stop_pid "$pid"; done
    started=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- what to run --------------------------------------------------------------------------------
bash "$HERE/install.sh"

want_ours=()
[[ "$only" != client && -z "${AUTOBAHN_SERVER_CMD:-}" ]] && want_ours+=(ws_echo_server)
[[ "$only" != server && -z "${AUTOBAHN_CLIENT_CMD:-}" ]] && want_ours+=(ws_autobahn_client)
target_dir=""
if ((${#want_ours[@]})); then
    if ((build)); then
        say "building release binaries"
        (cd "$REPO" && timeout 1800 cargo build --release --locked -p multipeer-tests --bins)
    fi
    target_dir="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps --locked |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    for bin in "${want_ours[@]}"; do
        [[ -x "$target_dir/release/$bin" ]] || {
            say "missing $target_dir/release/$bin (build with: cargo build --release -p multipeer-tests --bins)" >&2
            exit 1
        }
    done
fi
read -r -a server_cmd <<<"${AUTOBAHN_SERVER_CMD:-$target_dir/release/ws_echo_server --permessage-deflate}"
read -r -a client_cmd <<<"${AUTOBAHN_CLIENT_CMD:-$target_dir/release/ws_autobahn_client --permessage-deflate}"

if ((all)) && [[ -n "$cases_arg" ]]; then
    echo "run.sh: --all and --cases exclude each other" >&2
    exit 2
elif [[ -n "$cases_arg" ]]; then
    cases_json="$(python3 -c 'import json, sys; print(json.dumps([c.strip() for c in sys.argv[1].split(",") if c.strip()]))' "$cases_arg")"
elif ((all)); then
    cases_json='["*"]'
    TIMEOUT="${AUTOBAHN_TIMEOUT:-2400}"
else
    cases_json="$(python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])))' "$DEFAULT_CASES")"
fi
if [[ -z "$summary" ]]; then
    if ((all)) && [[ -z "$only" && -z "${AUTOBAHN_SERVER_CMD:-}${AUTOBAHN_CLIENT_CMD:-}" ]]; then
        summary="$HERE/SUMMARY.md"
    else
        summary="$REPORTS/SUMMARY.md"
    fi
fi

mkdir -p "$(dirname "$REPORTS")"
REPORTS="$(cd "$(dirname "$REPORTS")" && pwd)/$(basename "$REPORTS")"
case "$summary" in /*) ;; *) summary="$PWD/$summary" ;; esac
# Several people may share one checkout: never empty a reports dir another run is writing.
exec 9>"$REPORTS.lock"
if ! flock -n 9; then
    say "another run is using $REPORTS; waiting for it (up to ${TIMEOUT}s)"
    flock -w "$TIMEOUT" 9 || { say "gave up waiting for $REPORTS.lock" >&2; exit 1; }
fi
rm -rf "$REPORTS"
mkdir -p "$REPORTS"

# The case ids wstest will run, resolved by wstest's own pattern code, so that a report missing
# cases (a client that stopped early, a crashed run) is caught rather than counted as passing.
"$WSTEST" -a >"$REPORTS/versions.txt" 2>&1
root="$REPO/tests/.tools/py27/root"
LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$root/usr/bin/python2.7" - "$cases_json" "$EXCLUDE" >"$REPORTS/expected.json" <<'PY'
import json, sys
from autobahntestsuite.case import Cases, CaseBasename, CaseCategories, CaseSubCategories
from autobahntestsuite.caseset import CaseSet
cases = CaseSet("fuzzing", CaseBasename, Cases, CaseCategories, CaseSubCategories)
ids = cases.parseSpecCases({"cases": json.loads(sys.argv[1]), "exclude-cases": json.loads(sys.argv[2])})
unknown = [i for i in ids if i not in cases.CasesById]
if unknown:
    sys.exit("unknown case ids: %s" % " ".join(unknown))
print(json.dumps({"cases": ids, "patterns": json.loads(sys.argv[1]), "exclude": json.loads(sys.argv[2]), "sections": CaseCategories}))
PY

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (bounded) until something accepts TCP connections on 127.0.0.1:$1 while pid $2 lives.
wait_listening() {
    local port="$1" pid="$2" i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

server_seconds=""
client_seconds=""
notes=()

# --- direction 1: wstest fuzzingclient -> our server ---------------------------------------------
run_server_direction() {
    local log="$REPORTS/server-under-test.log" pid addr="" i start
    say "server: starting ${server_cmd[*]} 127.0.0.1:0"
    : >"$log" # before the server: the first `sed` must not race the redirection
    "${server_cmd[@]}" 127.0.0.1:0 >"$log" 2>&1 &
    pid=$!
    started+=("$pid")
    for ((i = 0; i < 200; i++)); do
        addr="$(sed -n '1s/^listening \(ws:\/\/\)\{0,1\}\([^/ ]*\).*$/\2/p' "$log" || true)"
        [[ -n "$addr" ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$addr" ]]; then
        say "server: no 'listening <addr>' line within 20 s; its output:" >&2
        cat "$log" >&2
        return 1
    fi
    case "$addr" in
        127.*:* | localhost:* | "[::1]:"*) ;;
        *) say "server: refusing non-loopback address '$addr'" >&2; return 1 ;;
    esac
    say "server: listening on $addr; running wstest fuzzingclient (timeout ${TIMEOUT}s)"
    python3 - "$REPORTS/fuzzingclient.json" "$AGENT" "ws://$addr" "$cases_json" "$EXCLUDE" "$REPORTS/servers" <<'PY'
import json, sys
path, agent, url, cases, exclude, outdir = sys.argv[1:]
spec = {"outdir": outdir, "servers": [{"agent": agent, "url": url}],
        "cases": json.loads(cases), "exclude-cases": json.loads(exclude), "exclude-agent-cases": {}}
json.dump(spec, open(path, "w"), indent=2)
PY
    start=$SECONDS
    local status=0
    (cd "$REPORTS" && timeout "$TIMEOUT" "$WSTEST" -m fuzzingclient -s fuzzingclient.json) \
        >"$REPORTS/wstest-fuzzingclient.log" 2>&1 || status=$?
    server_seconds=$((SECONDS - start))
    if ((status == 124)); then
        notes+=("server: wstest fuzzingclient timed out after ${TIMEOUT}s")
    elif ((status != 0)); then
        notes+=("server: wstest fuzzingclient exited with status $status (see $REPORTS/wstest-fuzzingclient.log)")
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" && status=0 || status=$?
        notes+=("server: the server under test exited during the run (status $status, see $log)")
    fi
    stop_pid "$pid"
    say "server: wstest finished in ${server_seconds}s"
}

# --- direction 2: our client -> wstest fuzzingserver ---------------------------------------------
run_client_direction() {
    local port pid="" attempt start status=0
    for ((attempt = 0; attempt < 3; attempt++)); do
        port="$(free_port)"
        python3 - "$REPORTS/fuzzingserver.json" "ws://127.0.0.1:$port" "$cases_json" "$EXCLUDE" "$REPORTS/clients" <<'PY'
import json, sys
path, url, cases, exclude, outdir = sys.argv[1:]
spec = {"url": url, "outdir": outdir, "cases": json.loads(cases),
        "exclude-cases": json.loads(exclude), "exclude-agent-cases": {}}
json.dump(spec, open(path, "w"), indent=2)
PY
        (cd "$REPORTS" && exec timeout "$TIMEOUT" "$WSTEST" -m fuzzingserver -s fuzzingserver.json -u 0) \
            >"$REPORTS/wstest-fuzzingserver.log" 2>&1 &
        pid=$!
        started+=("$pid")
        wait_listening "$port" "$pid" && break
        stop_pid "$pid"
        pid=""
    done
    if [[ -z "$pid" ]]; then
        say "client: wstest fuzzingserver did not start; its log:" >&2
        cat "$REPORTS/wstest-fuzzingserver.log" >&2
        return 1
    fi
    say "client: wstest fuzzingserver on 127.0.0.1:$port; running ${client_cmd[*]} (timeout ${TIMEOUT}s)"
    start=$SECONDS
    timeout "$TIMEOUT" "${client_cmd[@]}" "ws://127.0.0.1:$port" "$AGENT" \
        >"$REPORTS/client-under-test.log" 2>&1 || status=$?
    client_seconds=$((SECONDS - start))
    if ((status == 124)); then
        notes+=("client: the client under test timed out after ${TIMEOUT}s")
    elif ((status != 0)); then
        notes+=("client: the client under test exited with status $status (see $REPORTS/client-under-test.log)")
    fi
    stop_pid "$pid"
    say "client: finished in ${client_seconds}s"
}

check_args=(--expected "$REPORTS/expected.json" --allow "$HERE/non-strict.txt"
    --summary "$summary" --versions "$REPORTS/versions.txt" --repo "$REPO")
if [[ "$only" != client ]]; then
    run_server_direction || notes+=("server: direction could not run")
    check_args+=(--servers "$REPORTS/servers/index.json" --server-seconds "${server_seconds:-0}")
fi
if [[ "$only" != server ]]; then
    run_client_direction || notes+=("client: direction could not run")
    check_args+=(--clients "$REPORTS/clients/index.json" --client-seconds "${client_seconds:-0}")
fi
cleanup
for note in "${notes[@]}"; do check_args+=(--note "$note"); done

python3 "$HERE/check_reports.py" "${check_args[@]}"
