#!/usr/bin/env python3
"""Runs the multiplayer scenarios between a server and Godot clients, and checks their output.

Called by run_godot_only.sh (see README.md for the scenarios and the output lines). Every
process is started here in its own session, given a deadline, and killed (by its process group)
only if it overruns. Standard library only.
"""

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Largest raw payload (send_bytes data) that fits one 65535-byte WebSocket message, per version:
# direct to the server, and relayed to another client (4.x RELAY adds 6 bytes; 3.x relays the
# 9-byte-header message unchanged).
DIRECT_MAX = {"3": 65525, "4": 65534}
RELAY_MAX = {"3": 65525, "4": 65528}
# Server handshake timeout of each version with default settings (3.2.3: 1 s fixed; 4.x: 3 s).
HANDSHAKE_MS = {"3": 1000, "4": 3000}
SCENARIOS = ["main", "refuse", "handshake-timeout", "size", "bad-id"]
# Run only when asked for (--scenario rooms): it needs a server with rooms (`multipeer serve`).
EXTRA_SCENARIOS = ["rooms", "cluster"]


# The Godot 3 binary: Debian bookworm's godot3-server (3.2.3) unless --godot3 names another
# (godot36, 3.6.2); the full version string of each version run, from --version.
GODOT3 = ["godot3-server"]
VERSION_STRING = {}


def godot_cmd(version, script):
    path = os.path.join(HERE, script)
    if version == "3":
        return GODOT3 + ["-s", path]
    return [os.path.join(HERE, "godot4"), "-s", path]


def is_36(version):
    """Whether version 3 is a 3.3+ binary (3.6.2 here) rather than 3.2.3."""
    return version == "3" and not VERSION_STRING.get("3", "").startswith("3.2")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One process writing stdout+stderr to NAME.log in the scenario directory."""

    def __init__(self, run, name, cmd, env):
        self.name = name
        self.log_path = os.path.join(run.dir, name + ".log")
        full_env = dict(os.environ)
        # Each Godot 4 process role gets its own user-data directory: the editor build writes
        # its settings there at start, and concurrent writers would share one file otherwise.
        full_env.setdefault("MP_GODOT4_HOME", os.path.join(run.opts.out, "home4", name))
        full_env.update({k: str(v) for k, v in env.items()})
        self.log_file = open(self.log_path, "w")
        shell = isinstance(cmd, str)
        self.cmd = cmd if shell else shlex.join(cmd)
        self.popen = subprocess.Popen(
            cmd if not shell else ["bash", "-c", cmd], cwd=run.dir, env=full_env,
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        self.started = time.monotonic()
        self.killed = False
        run.procs.append(self)

    def text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait(self, deadline):
        try:
            self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
        self.log_file.close()
        return self.popen.returncode

    def kill(self):
        if self.popen.poll() is None:
            self.killed = True
            # Our own session: the wrapper and anything it started, nothing else.
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=2)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()


class Log:
    """Parsed machine-readable lines of one process."""

    LINE = re.compile(r"^(EVENT|RECV|SEND|RPC|NAME|INFO|RESULT|HTTP|FRAME|SENT|WIRE) ?(.*)$")

    def __init__(self, text, returncode=None, killed=False):
        self.text = text
        self.returncode = returncode
        self.killed = killed
        self.lines = []
        for raw in text.splitlines():
            m = self.LINE.match(raw)
            if not m:
                continue
            kind, rest = m.group(1), m.group(2)
            words = rest.split(" ")
            fields = {}
            head = []
            for w in words:
                if "=" in w:
                    k, _, v = w.partition("=")
                    fields[k] = v
                else:
                    head.append(w)
            self.lines.append((kind, " ".join(head), fields, raw))

    def find(self, kind, head=None, **want):
        out = []
        for k, h, f, raw in self.lines:
            if k != kind or (head is not None and h != head):
                continue
            if all(str(f.get(key)) == str(val) for key, val in want.items()):
                out.append(f)
        return out

    def first(self, kind, head=None, **want):
        found = self.find(kind, head, **want)
        return found[0] if found else None

    def index(self, kind, head=None, **want):
        for i, (k, h, f, raw) in enumerate(self.lines):
            if k == kind and (head is None or h == head) and all(
                    str(f.get(key)) == str(val) for key, val in want.items()):
                return i
        return -1

    def recv(self, frm=None, text=None, prefix=None, length=None):
        out = []
        for f in self.find("RECV"):
            if frm is not None and f.get("from") != str(frm):
                continue
            if text is not None and f.get("text") != text:
                continue
            if prefix is not None and not f.get("text", "").startswith(prefix):
                continue
            if length is not None and f.get("len") != str(length):
                continue
            out.append(f)
        return out

    def result(self):
        for k, h, f, raw in reversed(self.lines):
            if k == "RESULT":
                return raw[len("RESULT "):]
        return None

    def error_lines(self, pattern):
        return [l for l in self.text.splitlines() if pattern in l]


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, label, ok, detail=""):
        if ok:
            self.passed += 1
            print("PASS %s" % label, flush=True)
        else:
            self.failed += 1
            self.failures.append(label)
            print("FAIL %s%s" % (label, (" -- " + detail) if detail else ""), flush=True)
        return ok

    def skip(self, label, why):
        print("SKIP %s (%s)" % (label, why), flush=True)


def note(label, text):
    print("NOTE %s: %s" % (label, text), flush=True)


class Run:
    """One scenario of one version: a directory, processes, and their logs."""

    def __init__(self, opts, version, scenario):
        self.opts, self.version, self.scenario = opts, version, scenario
        self.dir = os.path.join(opts.out, "godot%s" % version, scenario)
        os.makedirs(self.dir, exist_ok=True)
        for f in os.listdir(self.dir):
            if f.endswith(".log"):
                os.remove(os.path.join(self.dir, f))
        self.procs = []
        self.tag = "%sv%s %s" % (opts.label + " " if opts.label else "", version, scenario)
        self.server = None
        self.proxy = None
        self.port = None
        self.url = None

    def env_common(self):
        env = {"MP_VERSION": self.version, "MP_CONTROL": "1" if self.opts.control else "0"}
        if self.opts.tls:
            # Servers (scenes and --server-cmd) read the certificate and key, clients the mode
            # and the CA; see make_certs.
            env.update({"MP_TLS": self.opts.tls, "MP_TLS_CA": self.opts.certs["ca"],
                        "MP_TLS_CERT": self.opts.certs["chain"], "MP_TLS_KEY": self.opts.certs["key"]})
        return env

    def start_server(self, timeout=30):
        self.port = free_port()
        env = self.env_common()
        env.update({"MP_PORT": self.port, "MP_BIND": "127.0.0.1", "MP_TIMEOUT": timeout})
        if self.server_kind() == "multipeer":
            cmd = [os.path.join(self.opts.mp_bin, "mp_server")]
        else:
            cmd = self.opts.server_cmd or godot_cmd(self.version, "g%s_server.gd" % self.version)
        self.server = Proc(self, "server", cmd, env)
        url_port = self.port
        if self.opts.proxy:
            url_port = free_port()
            self.proxy = Proc(self, "wire", [sys.executable, os.path.join(HERE, "ws_logproxy.py"),
                                             str(url_port), str(self.port), "--godot",
                                             self.version, "--timeout", str(timeout + 10)], {})
        self.url = "%s://127.0.0.1:%d" % ("wss" if self.opts.tls else "ws", url_port)
        wait = float(os.environ.get("MP_SERVER_WAIT", "10"))
        return wait_port(self.port, wait) and (not self.proxy or wait_port(url_port, 5))

    def start_client(self, name, scenario, url=None, **extra):
        env = self.env_common()
        env.update({"MP_URL": url or self.url, "MP_NAME": name, "MP_SCENARIO": scenario})
        env.update({k: v for k, v in extra.items()})
        if self.client_kind(name) == "multipeer":
            return Proc(self, "client" + name, [os.path.join(self.opts.mp_bin, "mp_client")], env)
        cmd = self.opts.client_cmds.get(name) or self.opts.client_cmds.get("*") \
            or godot_cmd(self.version, "g%s_client.gd" % self.version)
        return Proc(self, "client" + name, cmd, env)

    def finish(self, deadline, wait_server=True):
        codes = {}
        for p in self.procs:
            if p is self.server or p is self.proxy:
                continue
            codes[p.name] = p.wait(deadline)
        if self.server:
            if wait_server and self.server_lines() and self.opts.control:
                codes["server"] = self.server.wait(min(deadline, time.monotonic() + 5))
            else:
                self.server.kill()
                codes["server"] = self.server.popen.returncode
                self.server.log_file.close()
        if self.proxy:
            self.proxy.kill()
            self.proxy.log_file.close()
        logs = {p.name: Log(p.text(), p.popen.returncode, p.killed) for p in self.procs}
        return logs

    def server_kind(self):
        """godot (a g*_server.gd scene), multipeer (mp_server: the same lines and ctl: commands,
        with multipeer's documented differences) or external (any --server-cmd)."""
        if self.opts.mp_server:
            return "multipeer"
        return "external" if self.opts.server_cmd else "godot"

    def server_behaviour(self):
        """godot, multipeer (mp_server, or an external server built on multipeer's core, named
        by --server-core multipeer) or unknown: which documented behaviour to expect."""
        if self.server_kind() == "multipeer" or self.opts.server_core == "multipeer":
            return "multipeer"
        return "godot" if self.server_kind() == "godot" else "unknown"

    def server_lines(self):
        """Whether the server prints the scenes' lines, so its log can be checked."""
        return self.server_kind() in ("godot", "multipeer")

    def client_behaviour(self, name):
        """godot or multipeer: which documented behaviour to expect of client NAME (mp_client,
        or a --client-cmd client built on multipeer's core, named by --client-core multipeer)."""
        kind = self.client_kind(name)
        if kind == "multipeer" or (kind == "external" and self.opts.client_core == "multipeer"):
            return "multipeer"
        return "godot" if kind == "godot" else "unknown"

    def client_kind(self, name):
        """godot, multipeer (mp_client) or external (any --client-cmd) for client NAME."""
        if name in self.opts.mp_clients or "*" in self.opts.mp_clients:
            return "multipeer"
        if self.opts.client_cmds.get(name) or self.opts.client_cmds.get("*"):
            return "external"
        return "godot"


def wait_port(port, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_for_line(proc, needle, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if needle in proc.text():
            return True
        if proc.popen.poll() is not None:
            return needle in proc.text()
        time.sleep(0.05)
    return False


def client_ok(t, run, log, name):
    t.check("%s client %s ended by itself with RESULT ok" % (run.tag, name),
            log.result() == "ok" and log.returncode == 0 and not log.killed,
            "result=%r exit=%r killed=%s" % (log.result(), log.returncode, log.killed))


def server_ok(t, run, log):
    if not run.server_lines() or not run.opts.control:
        t.skip("%s server ended by itself" % run.tag, "stopped by the runner (external server or --no-control)")
        return
    t.check("%s server ended by itself with RESULT ok" % run.tag,
            log.result() == "ok" and log.returncode == 0 and not log.killed,
            "result=%r exit=%r killed=%s" % (log.result(), log.returncode, log.killed))


# ---------------------------------------------------------------- main


def scenario_main(opts, version, t):
    run = Run(opts, version, "main")
    names = ["A", "B", "C"]
    if not run.start_server():
        t.check("%s server listening" % run.tag, False, "port %s never opened" % run.port)
        run.finish(time.monotonic() + 1)
        return
    for n in names:
        run.start_client(n, "main", MP_PEERS=len(names))
        time.sleep(0.3)
    logs = run.finish(time.monotonic() + 40)
    server = logs["server"]
    c = {n: logs["client" + n] for n in names}
    v, tag = version, run.tag

    ids = {}
    for n in names:
        f = c[n].first("EVENT", "connected_to_server")
        ids[n] = int(f["id"]) if f and f.get("id", "").isdigit() else None
    t.check("%s ids assigned (>= 2, distinct)" % tag,
            all(i is not None and i >= 2 for i in ids.values()) and len(set(ids.values())) == 3,
            str(ids))
    if any(i is None for i in ids.values()):
        for n in names:
            client_ok(t, run, c[n], n)
        return
    for n in names:
        client_ok(t, run, c[n], n)
    server_ok(t, run, server)
    by_id = {ids[n]: n for n in names}

    for n in names:
        others = [ids[o] for o in names if o != n]
        seen = {int(f["id"]) for f in c[n].find("EVENT", "peer_connected") if f.get("id", "").isdigit()}
        t.check("%s %s peer_connected for the server and both other clients" % (tag, n),
                {1, *others} <= seen and ids[n] not in seen, "seen=%s" % sorted(seen))
    order = []
    for n in names:
        i_conn = c[n].index("EVENT", "connected_to_server")
        i_peer1 = c[n].index("EVENT", "peer_connected", id=1)
        order.append("connected_to_server first" if i_conn < i_peer1 else "peer_connected(1) first")
    note(tag, "client signal order: %s" % ", ".join(sorted(set(order))))

    if run.server_lines():
        sseen = {int(f["id"]) for f in server.find("EVENT", "peer_connected")}
        t.check("%s server peer_connected for each client" % tag, set(ids.values()) <= sseen,
                "seen=%s" % sorted(sseen))
        for n in names:
            t.check("%s server got hello from %s (raw to id 1)" % (tag, n),
                    len(server.recv(frm=ids[n], text="hello|" + n)) == 1)
    if opts.control:
        for n in names:
            t.check("%s %s got the server's targeted welcome" % (tag, n),
                    len(c[n].recv(frm=1, text="welcome|%d" % ids[n])) == 1)

    # Client to client, targeted and relayed.
    for n in names:
        for o in names:
            if o != n:
                t.check("%s %s got intro from %s (targeted, relayed)" % (tag, n, o),
                        len(c[n].recv(frm=ids[o], text="intro|" + o)) == 1)
    # Broadcast.
    for n in names:
        got = [o for o in names if o != n and len(c[n].recv(frm=ids[o], text="bcast|" + o)) == 1]
        t.check("%s %s got the broadcast of both other clients" % (tag, n), len(got) == 2,
                "from %s" % got)
    if run.server_lines():
        t.check("%s server got every client broadcast" % tag,
                all(len(server.recv(frm=ids[n], text="bcast|" + n)) == 1 for n in names))
    # Exclude one: X sends to -next(X).
    ring = {names[i]: names[(i + 1) % 3] for i in range(3)}
    for sender, excluded in ring.items():
        text = "excl|%s|%s" % (sender, excluded)
        for n in names:
            if n == sender:
                continue
            count = len(c[n].recv(frm=ids[sender], text=text))
            if n == excluded:
                t.check("%s %s did not get %s (it was excluded)" % (tag, n, text), count == 0)
            else:
                t.check("%s %s got %s (exclude-one)" % (tag, n, text), count == 1)
        if run.server_lines():
            t.check("%s server got %s" % (tag, text), len(server.recv(frm=ids[sender], text=text)) == 1)
    # Exclude the server (-1).
    for n in names:
        got = [o for o in names if o != n and len(c[n].recv(frm=ids[o], text="noserver|" + o)) == 1]
        t.check("%s %s got the to=-1 packets of both other clients" % (tag, n), len(got) == 2,
                "from %s" % got)
    if run.server_lines():
        count = sum(len(server.recv(frm=ids[n], text="noserver|" + n)) for n in names)
        if run.server_behaviour() == "multipeer":
            t.check("%s server did not process to=-1 packets (multipeer excludes itself in 3.x too)" % tag,
                    count == 0, "count=%d" % count)
        elif v == "3":
            t.check("%s server still got to=-1 packets (3.2.3 never excludes itself)" % tag,
                    count == 3, "count=%d" % count)
        else:
            t.check("%s server did not process to=-1 packets" % tag, count == 0, "count=%d" % count)
    # RPC between clients: X calls greet on next(X).
    for sender, target in ring.items():
        if run.client_kind(sender) != "godot":
            t.skip("%s rpc_id greet %s -> %s" % (tag, sender, target),
                   "%s is a %s client: RPCs are SceneMultiplayer's encoding, only Godot originates them"
                   % (sender, run.client_kind(sender)))
            continue
        got = c[target].find("RPC", "greet", **{"from": ids[sender], "arg": sender})
        t.check("%s rpc_id greet %s -> %s received once with the right sender id" % (tag, sender, target),
                len(got) == 1, "got=%d" % len(got))
    # Server-originated broadcast, targeted, exclude-one.
    if opts.control:
        for n in names:
            bc = len(c[n].recv(frm=1, text="srv-bcast"))
            to = len(c[n].recv(frm=1, text="srv-to|%d" % ids[n]))
            excl_others = all(len(c[n].recv(frm=1, text="srv-excl|%d" % ids[o])) == 1
                              for o in names if o != n)
            excl_self = len(c[n].recv(frm=1, text="srv-excl|%d" % ids[n]))
            t.check("%s %s got server broadcast x3, targeted x1, exclude-one (not its own)" % (tag, n),
                    bc == 3 and to == 1 and excl_others and excl_self == 0,
                    "bcast=%d to=%d excl_others=%s excl_self=%d" % (bc, to, excl_others, excl_self))
    size_checks(t, run, server, c["A"], c["B"], ids["A"], "A", "B")

    # C leaves early (clean close), then B is kicked (control) or leaves, then A stops the server.
    leave_event = "connection_failed" if v == "3" else "server_disconnected"
    t.check("%s C left by itself (%s after its own close)" % (tag, leave_event),
            c["C"].first("EVENT", "leaving") is not None and c["C"].first("EVENT", leave_event) is not None)
    for n in ("A", "B"):
        t.check("%s %s saw C leave (peer_disconnected)" % (tag, n),
                len(c[n].find("EVENT", "peer_disconnected", id=ids["C"])) == 1)
    if run.server_lines():
        t.check("%s server saw C leave" % tag,
                len(server.find("EVENT", "peer_disconnected", id=ids["C"])) == 1)
        if v == "3":
            cr = server.first("EVENT", "client_close_request", id=ids["C"])
            note(tag, "server client_close_request for C: %s" % (cr,))
    if opts.control:
        t.check("%s B was disconnected by the server (%s)" % (tag, leave_event),
                c["B"].first("EVENT", leave_event) is not None and c["B"].first("EVENT", "kick_timeout") is None)
        if v == "3":
            cr = c["B"].first("EVENT", "server_close_request")
            note(tag, "B server_close_request: %s" % (cr,))
    t.check("%s A saw B leave (peer_disconnected)" % tag,
            len(c["A"].find("EVENT", "peer_disconnected", id=ids["B"])) == 1)
    if run.server_lines():
        t.check("%s server saw B leave" % tag,
                len(server.find("EVENT", "peer_disconnected", id=ids["B"])) == 1)
    close_checks(t, run, server, c, ids)


def close_checks(t, run, server, c, ids):
    """Codes and reasons both ways: C closes with 4001 "leaving", the server kicks B with 4000
    "bye" (Godot 4: get_peer(id).close; 3.x: disconnect_peer / disconnect_from_host). Each side
    prints what its API shows (Godot 4: the kept WebSocketPeer's get_close_code/reason; 3.x:
    the close_request signals) with the reason's bytes in hex: a Godot 3 reason arrives with a
    NUL, which no application sees."""
    v, tag = run.version, run.tag
    leave_event = "connection_failed" if v == "3" else "server_disconnected"

    def shows(line, code, reason):
        return line is not None and line.get("code") == str(code) and line.get("reason") == reason \
            and line.get("reason_hex") == reason.encode().hex()

    # C's own close is reported after it (Godot 4: server_disconnected; 3.x: connection_failed).
    i_leave = c["C"].index("EVENT", "leaving")
    i_end = c["C"].index("EVENT", leave_event)
    t.check("%s C got %s after its own close, not before" % (tag, leave_event), 0 <= i_leave < i_end,
            "leaving at %d, %s at %d" % (i_leave, leave_event, i_end))
    f = c["C"].first("EVENT", "server_close")
    note(tag, "C's own close as its API shows it: %s" % (f,))
    # Godot 4 reports the server's answer (its echo of 4001 "leaving"); over wss:// a Godot 4
    # reader sees -1, the answer lost in the TLS shutdown (Godot with Godot), so only a
    # multipeer reader is held to it there.
    echo_read = not run.opts.tls
    # Between two Godot processes this is Godot's own behaviour, not ours: on a busy machine a
    # Godot 4 server was seen releasing the peer before reading its answer (-1). A check
    # there could fail CI for what is not ours, so it is a note; wherever multipeer is one of
    # the two ends, it is checked.
    ours = run.server_behaviour() == "multipeer"
    if (v == "4" and echo_read and (ours or run.client_behaviour("C") == "multipeer")) \
            or run.client_behaviour("C") == "multipeer":
        t.check("%s C read its close as 4001 \"leaving\" (the server's echo)" % tag,
                shows(f, 4001, "leaving"), "line=%s" % (f,))
    if run.server_lines():
        f = server.first("EVENT", "peer_close", id=ids["C"])
        t.check("%s server read C's close as 4001 \"leaving\", no NUL" % tag, shows(f, 4001, "leaving"),
                "line=%s" % (f,))
    if run.opts.control:
        f = c["B"].first("EVENT", "server_close")
        t.check("%s B read the kick as 4000 \"bye\", no NUL" % tag, shows(f, 4000, "bye"), "line=%s" % (f,))
        if run.server_lines():
            f = server.first("EVENT", "peer_close", id=ids["B"])
            note(tag, "server's view of kicked B's answer: %s" % (f,))
            if (v == "4" and echo_read and run.client_behaviour("B") == "multipeer") or ours:
                t.check("%s server read kicked B's answer as 4000 \"bye\"" % tag, shows(f, 4000, "bye"),
                        "line=%s" % (f,))


def size_checks(t, run, server, prober, target, prober_id, pname, tname):
    """The prober sent max and max+1 to the server and relayed to the target."""
    v, tag = run.version, run.tag
    dmax, rmax = DIRECT_MAX[v], RELAY_MAX[v]
    sends = {f.get("tag"): f for f in prober.find("SEND")}
    for key in ("big-direct-max", "big-direct-over", "big-relay-max", "big-relay-over"):
        f = sends.get(key)
        note(tag, "%s send_bytes %s len=%s err=%s" % (pname, key, f and f.get("len"), f and f.get("err")))
    # On 3.x a one-over packet is a 65536-byte message. Godot 3.2.3 sends it (err 0) and its
    # receivers drop it silently (their ring holds 65535 bytes); multipeer refuses to send it
    # (outbound_buffer_size), and a multipeer server accepts it (its inbound limit is 3.x's
    # wslay limit, 2^16). Relayed, it reaches nobody: a 3.2.3 server drops it in its own ring,
    # and a multipeer server drops it with a report, because it is over the 65535 bytes a 3.x
    # peer may be sent (outbound_buffer_size; Godot 3.3.3+ enforces it too).
    def sent(key):
        return sends.get(key, {}).get("err") == "0"
    direct_over_delivered = v == "3" and sent("big-direct-over") and run.server_behaviour() == "multipeer"
    t.check("%s %s send_bytes of %d bytes to the server returned OK" % (tag, pname, dmax),
            sends.get("big-direct-max", {}).get("err") == "0")
    t.check("%s %s relayed %d bytes reached %s intact in length" % (tag, pname, rmax, tname),
            len(target.recv(frm=prober_id, length=rmax, prefix="big|%s|%d|relay-max" % (pname, rmax))) == 1)
    t.check("%s %d relayed bytes (one over) never reached %s" % (tag, rmax + 1, tname),
            len(target.recv(frm=prober_id, length=rmax + 1)) == 0)
    if v == "3" and sent("big-relay-over") and run.server_lines() and run.server_behaviour() == "multipeer":
        f = server.first("EVENT", "packet_dropped", **{"from": prober_id})
        t.check("%s multipeer server reported dropping the %d-byte relay (over the target's limit)"
                % (tag, rmax + 1), f is not None and "65536" in f.get("reason", ""), "line=%s" % (f,))
    if v == "4":
        t.check("%s send_bytes of %d bytes fails at the 4.x sender (65536 on the wire)" % (tag, dmax + 1),
                sends.get("big-direct-over", {}).get("err") not in (None, "0"))
        t.check("%s relayed send_bytes of %d bytes fails at the 4.x sender" % (tag, rmax + 1),
                sends.get("big-relay-over", {}).get("err") not in (None, "0"))
    if run.server_lines():
        t.check("%s server got the %d-byte raw packet" % (tag, dmax),
                len(server.recv(frm=prober_id, length=dmax)) == 1)
        if direct_over_delivered:
            t.check("%s multipeer server got the %d bytes (65536 on the wire) that 3.2.3 drops silently"
                    % (tag, dmax + 1), len(server.recv(frm=prober_id, length=dmax + 1)) == 1)
        else:
            t.check("%s server did not get %d bytes (one over)" % (tag, dmax + 1),
                    len(server.recv(frm=prober_id, length=dmax + 1)) == 0)
        if v == "3" and run.server_behaviour() == "godot" and sent("big-direct-over"):
            t.check("%s 3.2.3 server logged the silent drop of the 65536-byte message" % tag,
                    len(server.error_lines("Buffer payload full! Dropping data.")) >= 1)
    if run.opts.control:
        t.check("%s %s got the server's %d-byte packet" % (tag, pname, dmax),
                len(prober.recv(frm=1, length=dmax)) == 1)
        f = server.first("SEND", tag="big-server-over") if run.server_lines() else None
        if f:
            note(tag, "server send_bytes of %d bytes returned err=%s" % (dmax + 1, f.get("err")))
        if v == "3" and f and f.get("err") == "0" and run.client_behaviour(pname) == "multipeer":
            t.check("%s multipeer %s got the server's %d-byte packet (65536 on the wire) that 3.2.3 drops"
                    % (tag, pname, dmax + 1), len(prober.recv(frm=1, length=dmax + 1)) == 1)
        else:
            t.check("%s %s did not get the server's %d-byte packet" % (tag, pname, dmax + 1),
                    len(prober.recv(frm=1, length=dmax + 1)) == 0)
        if run.server_lines() and run.server_behaviour() == "multipeer":
            t.check("%s multipeer server refused to send %d bytes (err != 0)" % (tag, dmax + 1),
                    f is not None and f.get("err") not in (None, "0"), "line=%s" % (f,))


# ---------------------------------------------------------------- refuse


def scenario_refuse(opts, version, t):
    run = Run(opts, version, "refuse")
    tag = run.tag
    if not opts.control:
        t.skip(tag, "needs the server to obey ctl:refuse/ctl:accept")
        return
    if not run.start_server():
        t.check("%s server listening" % tag, False)
        run.finish(time.monotonic() + 1)
        return
    a = run.start_client("A", "refuse", MP_HOLD=5)
    refusing = wait_for_line(a, "EVENT refusing", 12)
    t.check("%s A connected and the server acknowledged refuse_new_connections" % tag, refusing)
    d_start = time.monotonic()
    run.start_client("D", "connect-only", MP_EXPECT_FAIL=1, MP_TIMEOUT=9)
    accepting = wait_for_line(a, "EVENT accepting", 12)
    d_wait = time.monotonic() - d_start
    if accepting:
        run.start_client("E", "connect-only", MP_LINGER=0.5)
    logs = run.finish(time.monotonic() + 25)
    la, ld = logs["clientA"], logs["clientD"]
    client_ok(t, run, la, "A")
    server_ok(t, run, logs["server"])
    fail = ld.first("EVENT", "connection_failed")
    t.check("%s D (connecting while refused) got connection_failed and no id" % tag,
            fail is not None and ld.first("EVENT", "connected_to_server") is None)
    if fail:
        note(tag, "D connection_failed at t_ms=%s after its start (started %.1f s before accepting resumed)"
             % (fail.get("t_ms"), d_wait))
    le = logs.get("clientE")
    t.check("%s E (after accept) connected" % tag, le is not None and le.first("EVENT", "connected_to_server") is not None)
    if le is not None:
        client_ok(t, run, le, "E")
        e = le.first("EVENT", "connected_to_server")
        if e:
            t.check("%s A saw exactly one newcomer, E" % tag,
                    [f["id"] for f in la.find("EVENT", "peer_connected") if f["id"] != "1"] == [e["id"]])
    if run.server_lines():
        n = len(logs["server"].find("EVENT", "peer_connected"))
        t.check("%s server admitted exactly A and E" % tag, n == 2, "peer_connected x%d" % n)


# ---------------------------------------------------------------- handshake timeout


def scenario_handshake(opts, version, t):
    run = Run(opts, version, "handshake-timeout")
    tag = run.tag
    if not run.start_server():
        t.check("%s server listening" % tag, False)
        run.finish(time.monotonic() + 1)
        return
    # 3.3+ made the fixed 1 s of 3.2.3 the `handshake_timeout` property, 3 s by default.
    expect = opts.handshake_ms or (3000 if is_36(version) and run.server_kind() == "godot"
                                   else HANDSHAKE_MS[version])
    # F connects first, so the probes meet a server whose loop is already running (a Godot
    # server accepts only while it polls; its first frame comes a while after listen), and
    # stays connected while they wait, to show that silent connections do not disturb it.
    f = run.start_client("F", "connect-only", MP_LINGER=expect / 1000.0 + 2.5,
                         MP_SHUTDOWN=1 if opts.control else 0)
    wait_for_line(f, "EVENT connected_to_server", 10)
    probe = os.path.join(HERE, "tcp_probe.py")
    port = run.port  # straight to the server: the proxy would hide the timing
    Proc(run, "probeIdle", [sys.executable, probe, str(port), "--limit", "6"], {})
    # Part of a request: an HTTP line, or over TLS the start of a ClientHello record (a record
    # header announcing 512 bytes, then the handshake header).
    partial = "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03" if opts.tls else "GET / HTTP/1.1\\r\\n"
    Proc(run, "probePartial", [sys.executable, probe, str(port), "--send", partial, "--limit", "6"], {})
    logs = run.finish(time.monotonic() + 20)
    for name in ("probeIdle", "probePartial"):
        f = logs[name].first("EVENT", "closed_by_server")
        after = int(f["after_ms"]) if f else None
        in_time = f is not None and expect * 0.8 <= after <= expect + 1200
        if opts.tls:
            # Before TLS is up no HTTP answer can be sent (multipeer's 408 stays in the
            # unfinished session): at most a plaintext TLS alert (record type 0x15) comes back.
            quiet = f is not None and (f.get("bytes_received") == "0" or f.get("first", "").startswith("15"))
            t.check("%s %s (TLS) closed by the server after ~%d ms, nothing sent but a TLS alert"
                    % (tag, name, expect), in_time and quiet, "line=%s" % (f or logs[name].text.strip()))
        elif run.server_behaviour() == "multipeer":
            # multipeer answers "HTTP/1.1 408 Request Timeout" before closing; Godot says nothing.
            t.check("%s %s answered 408 and closed by the server after ~%d ms" % (tag, name, expect),
                    in_time and f.get("first", "").startswith(b"HTTP/1.1 408 ".hex()),
                    "line=%s" % (f or logs[name].text.strip()))
        else:
            t.check("%s %s closed by the server without any reply after ~%d ms" % (tag, name, expect),
                    in_time and f.get("bytes_received") == "0", "line=%s" % (f or logs[name].text.strip()))
    lf = logs["clientF"]
    t.check("%s F connected while the probes were pending" % tag,
            lf.first("EVENT", "connected_to_server") is not None)
    client_ok(t, run, lf, "F")
    if opts.control:
        server_ok(t, run, logs["server"])


# ---------------------------------------------------------------- size


def scenario_size(opts, version, t):
    run = Run(opts, version, "size")
    tag = run.tag
    if not run.start_server():
        t.check("%s server listening" % tag, False)
        run.finish(time.monotonic() + 1)
        return
    run.start_client("A", "size", MP_PEERS=2)
    time.sleep(0.3)
    # A 4.x client (and a multipeer client of either version: 3.3.3+ has the same outbound
    # limit) needs its outbound_buffer_size raised to send the oversized message.
    extra = {"MP_OUTBOUND": 131072} if version == "4" or run.client_behaviour("B") == "multipeer" else {}
    run.start_client("B", "size", MP_PEERS=2, **extra)
    logs = run.finish(time.monotonic() + 30)
    la, lb, server = logs["clientA"], logs["clientB"], logs["server"]
    ids = {}
    for n, lg in (("A", la), ("B", lb)):
        f = lg.first("EVENT", "connected_to_server")
        ids[n] = int(f["id"]) if f else None
    if None in ids.values():
        t.check("%s both clients connected" % tag, False, str(ids))
        return
    client_ok(t, run, la, "A")
    client_ok(t, run, lb, "B")
    size_checks(t, run, server, la, lb, ids["A"], "A", "B")
    over = lb.first("SEND", tag="big-oversize")
    note(tag, "B oversize send_bytes len=%s err=%s" % (over and over.get("len"), over and over.get("err")))
    a_saw = len(la.find("EVENT", "peer_disconnected", id=ids["B"])) == 1
    if version == "4":
        t.check("%s oversize message (65536 on the wire) closes B: A saw B leave" % tag, a_saw)
        t.check("%s B was dropped (server_disconnected)" % tag, lb.first("EVENT", "server_disconnected") is not None)
        if run.server_lines():
            t.check("%s server removed B at once" % tag,
                    len(server.find("EVENT", "peer_disconnected", id=ids["B"])) == 1)
    elif run.client_kind("B") == "godot" and is_36(version):
        # 3.3.3+ checks the outbound buffer: the 65537-byte message never leaves B.
        t.check("%s 3.6 B's oversized send_bytes is refused with err 6 (ERR_OUT_OF_MEMORY)" % tag,
                over is not None and over.get("err") == "6", "line=%s" % (over,))
        t.check("%s B stayed connected until it left by itself" % tag,
                lb.first("EVENT", "server_close_request") is None and lb.first("EVENT", "leaving") is not None)
    elif run.server_behaviour() == "multipeer":
        # multipeer: Close 1009 as 3.2.3 sends it, but the peer is removed and announced.
        t.check("%s oversize message (65537 on the wire) closes B with 1009, and A saw B leave "
                "(multipeer keeps no zombie)" % tag, a_saw)
        cr = lb.first("EVENT", "server_close_request")
        t.check("%s B got Close 1009" % tag, cr is not None and cr.get("code") == "1009", "line=%s" % (cr,))
        if run.server_lines():
            f = server.first("EVENT", "peer_disconnected", id=ids["B"])
            t.check("%s server removed B after its 1009" % tag, f is not None and f.get("code") == "1009",
                    "line=%s" % (f,))
    else:
        # 3.2.3: Close 1009 from the server, then the peer stays a "zombie": no SYS_DEL.
        t.check("%s oversize message leaves a 3.2.3 zombie: A never saw B leave" % tag, not a_saw)
        cr = lb.first("EVENT", "server_close_request")
        note(tag, "B after oversize: close_request=%s events=%s" % (
            cr, [h for k, h, f, raw in lb.lines if k == "EVENT"][-4:]))
        if run.server_lines():
            t.check("%s 3.2.3 server never reported B disconnected" % tag,
                    len(server.find("EVENT", "peer_disconnected", id=ids["B"])) == 0)


# ---------------------------------------------------------------- bad id (client only)


def scenario_bad_id(opts, version, t):
    """A scripted server sends a malformed first message to a Godot client."""
    run = Run(opts, version, "bad-id")
    tag = run.tag
    if opts.tls:
        t.skip(tag, "the scripted server (fake_ws_server.py) speaks plain ws:// only")
        return
    fake = os.path.join(HERE, "fake_ws_server.py")
    if version == "4":
        cases = [("five-bytes", ["0903000000"], 4), ("id-one", ["01000000"], 4), ("no-id", [], 4.5)]
    else:
        cases = [("g4-id", ["39300000"], 3), ("short", ["000102"], 3)]
    for label, sends, linger in cases:
        port = free_port()
        args = [sys.executable, fake, str(port), "--linger", str(linger), "--godot", version]
        for s in sends:
            args += ["--send", s]
        srv = Proc(run, "fake-" + label, args, {})
        wait_port_log(srv, 5)
        cl = run.start_client("-" + label, "connect-only", url="ws://127.0.0.1:%d" % port,
                              MP_EXPECT_FAIL=1, MP_TIMEOUT=linger + 4)
        cl.wait(time.monotonic() + linger + 8)
        srv.wait(time.monotonic() + 3)
        lc, ls = Log(cl.text(), cl.popen.returncode), Log(srv.text(), srv.popen.returncode)
        fail = lc.first("EVENT", "connection_failed")
        t.check("%s %s: client reports connection_failed and never connected_to_server" % (tag, label),
                fail is not None and lc.first("EVENT", "connected_to_server") is None)
        errs = [l.strip() for l in lc.text.splitlines()
                if l.startswith("ERROR") and "locale" not in l]
        frames = [raw for k, h, f, raw in ls.lines if k == "FRAME"]
        note("%s %s" % (tag, label), "client failed at t_ms=%s; errors=%s; client frames=%s" % (
            fail and fail.get("t_ms"), errs[:2], frames))
        if version == "4" and sends:
            t.check("%s %s: client answered with Close 1000, empty reason" % (tag, label),
                    any("payload=03e8 " in fr for fr in frames))
        if version == "4" and not sends and run.client_behaviour("-" + label) == "multipeer":
            # multipeer's handshake timeout also covers the wait for the id (Godot 4 waits forever).
            t.check("%s no-id: multipeer client gave up at its 3 s handshake timeout" % tag,
                    fail is not None and 2800 <= int(fail.get("t_ms", 0)) < 4400, "line=%s" % (fail,))
        elif version == "4" and not sends:
            t.check("%s no-id: client kept waiting past its 3 s handshake timeout" % tag,
                    fail is not None and int(fail.get("t_ms", 0)) >= 4000)


def wait_port_log(proc, seconds):
    return wait_for_line(proc, "EVENT listen", seconds)


# ---------------------------------------------------------------- entry


def make_certs(folder):
    """A test CA and a leaf for 127.0.0.1 signed by it (P-256, 30 days), as PEM files made with
    openssl. The leaf names 127.0.0.1 as an IP address (rustls, Godot 4's mbedTLS) and also as a
    DNS name: Godot 3.2.3's mbedTLS 2.16 matches the host against DNS names only."""
    os.makedirs(folder, exist_ok=True)
    path = {k: os.path.join(folder, f) for k, f in (
        ("ca", "ca.crt"), ("ca_key", "ca.key"), ("key", "leaf.key"), ("csr", "leaf.csr"),
        ("leaf", "leaf.crt"), ("ext", "leaf.ext"), ("chain", "chain.crt"))}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    with open(path["ext"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    steps = [
        ["openssl", "req", "-x509", *ec, "-days", "30", "-subj", "/CN=multipeer interop test CA",
         "-keyout", path["ca_key"], "-out", path["ca"], "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", path["key"], "-out", path["csr"]],
        ["openssl", "x509", "-req", "-in", path["csr"], "-CA", path["ca"], "-CAkey", path["ca_key"],
         "-set_serial", "0x%x" % int(time.time() * 1000), "-days", "30", "-extfile", path["ext"],
         "-out", path["leaf"]],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            sys.exit("make_certs: %s failed: %s" % (" ".join(cmd[:2]), done.stderr.strip()))
    with open(path["chain"], "w") as out:
        for part in ("leaf", "ca"):
            with open(path[part]) as f:
                out.write(f.read())
    return path



def available(version):
    try:
        cmd = godot_cmd(version, "x")[:1] + ["--version"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
        return out.strip().splitlines()[-1] if out.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--version", default=os.environ.get("MP_VERSIONS", "3,4"),
                    help="comma list of Godot versions: 3, 4 (default both)")
    ap.add_argument("--scenario", default=os.environ.get("MP_SCENARIOS", ",".join(SCENARIOS)),
                    help="comma list of: " + ", ".join(SCENARIOS + EXTRA_SCENARIOS))
    ap.add_argument("--server-cmd", default=os.environ.get("SERVER_CMD", ""),
                    help="shell command replacing the Godot server (gets MP_PORT, MP_VERSION, ...)")
    ap.add_argument("--client-cmd", action="append", default=[], metavar="NAME=CMD",
                    help="shell command replacing Godot client NAME (A, B, C, D, E, F; * = all)")
    ap.add_argument("--no-control", dest="control", action="store_false",
                    default=os.environ.get("MP_CONTROL", "1") != "0",
                    help="never send ctl: requests (for servers that do not implement them)")
    ap.add_argument("--mp-bin", default=os.environ.get("MP_BIN", ""),
                    help="directory with multipeer's mp_server and mp_client (tests/src/bin)")
    ap.add_argument("--mp-server", action="store_true", default=os.environ.get("MP_SERVER", "0") == "1",
                    help="run MP_BIN/mp_server as the server; its log is checked like a Godot server's, "
                         "with multipeer's documented differences")
    ap.add_argument("--server-core", default=os.environ.get("MP_SERVER_CORE", ""), choices=["", "multipeer"],
                    help="the --server-cmd server is built on multipeer's core: expect its documented "
                         "differences (for example `multipeer serve`)")
    ap.add_argument("--mp-clients", default=os.environ.get("MP_CLIENTS", ""),
                    help="comma list of client names (or *) to run as MP_BIN/mp_client")
    ap.add_argument("--client-core", default=os.environ.get("MP_CLIENT_CORE", ""), choices=["", "multipeer"],
                    help="the --client-cmd clients are built on multipeer's core: expect its documented "
                         "differences (for example mio_client, on multipeer-mio's Client)")
    ap.add_argument("--tls", default=os.environ.get("MP_TLS_MODE", ""), choices=["", "ca", "unsafe"],
                    help="wss://: a test CA and a certificate for 127.0.0.1 are made with openssl in "
                         "OUT/tls; servers get MP_TLS_CERT/MP_TLS_KEY (the scenes load them), clients "
                         "MP_TLS=ca (trust only that CA, host name checked) or MP_TLS=unsafe "
                         "(TLSOptions.client_unsafe / verify_ssl false) and MP_TLS_CA")
    ap.add_argument("--label", default=os.environ.get("MP_LABEL", ""),
                    help="prefix of every check label (to tell combinations apart)")
    ap.add_argument("--proxy", action="store_true", help="log the wire bytes with ws_logproxy.py")
    ap.add_argument("--handshake-ms", type=int, default=0,
                    help="expected server handshake timeout (default: 1000 for 3, 3000 for 4)")
    ap.add_argument("--out", default=os.environ.get("MP_OUT", "/tmp/multipeer-godot-interop"))
    ap.add_argument("--godot3", default=os.environ.get("MP_GODOT3", "godot3-server"),
                    help="the Godot 3 command (default godot3-server, 3.2.3; godot36 beside this "
                         "script runs 3.6.2)")
    opts = ap.parse_args()
    GODOT3[:] = shlex.split(opts.godot3)
    if GODOT3 and os.sep not in GODOT3[0] and os.path.exists(os.path.join(HERE, GODOT3[0])):
        GODOT3[0] = os.path.join(HERE, GODOT3[0])
    opts.mp_clients = {n.strip() for n in opts.mp_clients.split(",") if n.strip()}
    if (opts.mp_server or opts.mp_clients) and not os.path.isdir(opts.mp_bin):
        ap.error("--mp-server and --mp-clients need --mp-bin DIR (MP_BIN) with mp_server and mp_client")
    if opts.mp_server and opts.server_cmd:
        ap.error("--mp-server and --server-cmd are exclusive")
    if opts.tls and (opts.mp_server or opts.mp_clients or opts.proxy):
        ap.error("--tls: mp_server and mp_client speak ws:// only (use --server-cmd / --client-cmd), "
                 "and --proxy decodes plain frames only")
    opts.certs = make_certs(os.path.join(opts.out, "tls")) if opts.tls else None
    opts.client_cmds = {}
    for key, val in os.environ.items():
        if key.startswith("CLIENT_CMD_") and val:
            opts.client_cmds[key[len("CLIENT_CMD_"):]] = val
    if os.environ.get("CLIENT_CMD"):
        opts.client_cmds["*"] = os.environ["CLIENT_CMD"]
    for item in opts.client_cmd:
        name, _, cmd = item.partition("=")
        opts.client_cmds[name] = cmd

    t = Tally()
    table = {"main": scenario_main, "refuse": scenario_refuse, "handshake-timeout": scenario_handshake,
             "size": scenario_size, "bad-id": scenario_bad_id}
    import scenario_rooms
    this = sys.modules[__name__]
    table["rooms"] = lambda opts, version, t: scenario_rooms.scenario_rooms(opts, version, t, this)
    import scenario_cluster
    table["cluster"] = lambda opts, version, t: scenario_cluster.scenario_cluster(opts, version, t, this)
    started = time.monotonic()
    for version in [v.strip() for v in opts.version.split(",") if v.strip()]:
        got = available(version)
        VERSION_STRING[version] = got or ""
        if not t.check("v%s Godot available (%s)" % (version, got), got is not None,
                       "run install_godot%s.sh" % version):
            continue
        for name in [s.strip() for s in opts.scenario.split(",") if s.strip()]:
            if name not in table:
                t.check("scenario %s exists" % name, False)
                continue
            t0 = time.monotonic()
            print("== v%s %s" % (version, name), flush=True)
            table[name](opts, version, t)
            print("   (%.1f s, logs in %s)" % (time.monotonic() - t0,
                                               os.path.join(opts.out, "godot" + version, name)), flush=True)
    print("%d passed, %d failed (%.0f s)" % (t.passed, t.failed, time.monotonic() - started))
    for label in t.failures:
        print("  failed: %s" % label)
    return 0 if t.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
