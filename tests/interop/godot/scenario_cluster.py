"""The cluster scenario (issue 16, CLUSTER.md): one room spread over three instances.

A nats-server (the distribution's, JetStream on) on a free loopback port and three
`multipeer serve --cluster` instances (MULTIPEER_CLUSTER_BIN, a build with the `cluster`
feature); Godot 4 clients A, B, C connect to ws://HOST:PORT_k/a, one per instance, and run the
main scenario as if they shared one server: intros relayed to one peer, broadcasts, exclude-one,
to -1, RPCs, a relay-sized packet, leaving. Checks: ids distinct, each drawn in its instance's
residue class (id % 64 == node index); each client is told of the server and its two room-mates
only; it receives every packet and the RPC of its room-mates once, each sender's in the order
sent; departures reach the others. Then Godot clients X, Y, Z of /k, one per instance, and a
SIGKILL of instance 2: Z leaves X's and Y's views within the deadline; a restarted instance's new
client W and X, Y see each other.

Run by tests/cluster/run.sh (scenarios.py --version 4 --scenario cluster --no-control), standard
library only; `base` is scenarios.py (Run, Proc, free_port, wait_port, client_ok, note).
"""

import os
import re
import shutil
import signal
import time

NAMES = ["A", "B", "C"]
ROOM = "a"


def nats_program():
    return os.environ.get("NATS_SERVER") or shutil.which("nats-server") or "/usr/sbin/nats-server"


def scenario_cluster(opts, version, t, base):
    run = base.Run(opts, version, "cluster")
    tag = run.tag
    binary = os.environ.get("MULTIPEER_CLUSTER_BIN", "")
    if version != "4" or not os.path.isfile(binary):
        t.check("%s MULTIPEER_CLUSTER_BIN names a multipeer built with --features cluster" % tag,
                False, "MULTIPEER_CLUSTER_BIN=%r (version %s)" % (binary, version))
        return
    nats_port = base.free_port()
    store = os.path.join(run.dir, "nats-store")
    shutil.rmtree(store, ignore_errors=True)
    nats = base.Proc(run, "nats", [nats_program(), "-a", "127.0.0.1", "-p", str(nats_port), "-js",
                                   "-sd", store], {})
    if not t.check("%s nats-server listening" % tag, base.wait_port(nats_port, 10)):
        run.finish(time.monotonic() + 1)
        return
    ports, servers = [], []
    for k in range(3):
        port = base.free_port()
        cmd = [binary, "serve", "--listen", "127.0.0.1:%d" % port, "--cluster",
               "nats://127.0.0.1:%d" % nats_port, "--node", "godot-%d" % k]
        servers.append(base.Proc(run, "server%d" % k, cmd, {}))
        ports.append(port)
        ok = base.wait_port(port, 10)
        t.check("%s instance %d listening" % (tag, k), ok)
        if not ok:
            for p in servers + [nats]:
                p.kill()
            run.finish(time.monotonic() + 1)
            return
    # Listening comes before joining the cluster; wait for the index line before clients come.
    indexes = []
    for k, s in enumerate(servers):
        index = None
        end = time.monotonic() + 10
        while index is None and time.monotonic() < end:
            for line in s.text().splitlines():
                if line.startswith("multipeer: cluster ") and " index " in line:
                    index = int(line.rsplit(" index ", 1)[1])
            time.sleep(0.05)
        indexes.append(index)
    t.check("%s each instance holds its own node index" % tag,
            None not in indexes and len(set(indexes)) == 3, str(indexes))
    for i, name in enumerate(NAMES):
        run.start_client(name, "main", url="ws://127.0.0.1:%d/%s" % (ports[i], ROOM), MP_PEERS=len(NAMES))
        time.sleep(0.3)
    clients = [p for p in run.procs if p.name.startswith("client")]
    deadline = time.monotonic() + 60
    for p in clients:
        p.wait(deadline)
    sigkill_phase(run, t, base, servers, ports, binary, nats_port)
    for p in servers + [nats]:
        p.kill()
        p.log_file.close()
    logs = {p.name: base.Log(p.text(), p.popen.returncode, p.killed) for p in run.procs}
    c = {n: logs["client" + n] for n in NAMES}

    ids = {}
    for n, log in c.items():
        f = log.first("EVENT", "connected_to_server")
        ids[n] = int(f["id"]) if f and f.get("id", "").isdigit() else None
    t.check("%s ids assigned and distinct across the three instances" % tag,
            all(i is not None and i >= 2 for i in ids.values()) and len(set(ids.values())) == 3, str(ids))
    if None not in indexes and None not in ids.values():
        t.check("%s each id is in its instance's residue class (id %% 64 == node index)" % tag,
                all(ids[n] % 64 == indexes[i] for i, n in enumerate(NAMES)),
                "ids %s, indexes %s" % (ids, indexes))
    for n, log in c.items():
        base.client_ok(t, run, log, n)
    if any(i is None for i in ids.values()):
        return
    for i, n in enumerate(NAMES):
        mates = [m for m in NAMES if m != n]
        seen = {int(f["id"]) for f in c[n].find("EVENT", "peer_connected") if f.get("id", "").isdigit()}
        t.check("%s %s (instance %d) was told of the server and its two room-mates on other instances"
                % (tag, n, i), seen == {1, *(ids[m] for m in mates)}, "seen=%s" % sorted(seen))
        for m in mates:
            texts = [f.get("text", "") for f in c[n].recv(frm=ids[m])]
            wanted = ["intro|" + m, "bcast|" + m, "noserver|" + m]
            t.check("%s %s got intro (targeted), broadcast and to -1 from %s once each" % (tag, n, m),
                    all(texts.count(w) == 1 for w in wanted), str(texts))
            order = [texts.index(w) for w in wanted if w in texts]
            t.check("%s %s got %s's packets in the order sent" % (tag, n, m), order == sorted(order), str(texts))
    for i, sender in enumerate(NAMES):
        target = NAMES[(i + 1) % len(NAMES)]
        got = c[target].find("RPC", "greet", **{"from": ids[sender], "arg": sender})
        t.check("%s rpc_id greet %s -> %s across instances received once with the right sender id"
                % (tag, sender, target), len(got) == 1, "got=%d" % len(got))
    # The first client probes sizes: the largest relayed packet crosses the broker intact.
    first, next_ = NAMES[0], NAMES[1]
    big = c[next_].recv(frm=ids[first], length=65528)
    t.check("%s the largest relayed packet (%s -> %s) crossed the broker" % (tag, first, next_),
            len(big) == 1, "got=%d" % len(big))
    leaver = NAMES[-1]
    for n in NAMES[:-1]:
        t.check("%s %s saw %s (another instance) leave" % (tag, n, leaver),
                len(c[n].find("EVENT", "peer_disconnected", id=ids[leaver])) == 1)
    base.note(tag, "ids %s, node indexes %s" % (ids, indexes))


def ids_seen(proc):
    """Peers a client's log says are in its view now (connected and not disconnected since)."""
    seen = set()
    for line in proc.text().splitlines():
        m = re.match(r"^EVENT peer_(connected|disconnected) id=(\d+)", line)
        if m:
            (seen.add if m.group(1) == "connected" else seen.discard)(int(m.group(2)))
    return seen


def own_id(proc):
    m = re.search(r"^EVENT connected_to_server id=(\d+)", proc.text(), re.M)
    return int(m.group(1)) if m else None


def wait_until(what, seconds, done):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.05)
    return False


def sigkill_phase(run, t, base, servers, ports, binary, nats_port):
    """Godot clients X, Y, Z of /k on instances 0, 1, 2; SIGKILL of instance 2: Z leaves the
    views of X and Y within the deadline (3 s, plus a heartbeat); a restarted instance's new
    client W and X, Y see each other."""
    tag = run.tag + " sigkill"
    room = "k"
    procs = {}
    for i, name in enumerate(["X", "Y", "Z"]):
        procs[name] = run.start_client(name, "connect-only", url="ws://127.0.0.1:%d/%s" % (ports[i], room),
                                       MP_LINGER=20, MP_TIMEOUT=40)
    ok = wait_until("ids", 20, lambda: all(own_id(p) for p in procs.values()))
    ids = {n: own_id(p) for n, p in procs.items()}
    ok = ok and wait_until("views", 20, lambda: all(
        ids_seen(procs[n]) == {1, *(ids[m] for m in procs if m != n)} for n in procs))
    if not t.check("%s X, Y, Z (one per instance) see each other" % tag, ok,
                   str({n: sorted(ids_seen(p)) for n, p in procs.items()})):
        return
    os.kill(servers[2].popen.pid, signal.SIGKILL)
    killed = time.monotonic()
    gone = wait_until("departure", 10, lambda: all(ids["Z"] not in ids_seen(procs[n]) for n in ("X", "Y")))
    elapsed = time.monotonic() - killed
    t.check("%s Z (on the killed instance) left X's and Y's views within the deadline" % tag,
            gone and 2.0 <= elapsed <= 4.5, "after %.2f s" % elapsed)
    restarted = base.Proc(run, "server2b", [binary, "serve", "--listen", "127.0.0.1:%d" % ports[2], "--cluster",
                                            "nats://127.0.0.1:%d" % nats_port, "--node", "godot-2b"], {})
    servers.append(restarted)
    if not t.check("%s the restarted instance listens" % tag, base.wait_port(ports[2], 10)):
        return
    wait_until("cluster", 10, lambda: " index " in restarted.text())
    procs["W"] = run.start_client("W", "connect-only", url="ws://127.0.0.1:%d/%s" % (ports[2], room),
                                  MP_LINGER=8, MP_TIMEOUT=30)
    ok = wait_until("W", 20, lambda: own_id(procs["W"]) is not None)
    ids["W"] = own_id(procs["W"])
    ok = ok and wait_until("views", 20, lambda: ids_seen(procs["W"]) == {1, ids["X"], ids["Y"]}
                           and all(ids["W"] in ids_seen(procs[n]) for n in ("X", "Y")))
    t.check("%s a new client of the restarted instance and X, Y see each other" % tag, ok,
            str({n: sorted(ids_seen(p)) for n, p in procs.items()}))
    base.note(tag, "departure seen %.2f s after SIGKILL; ids %s" % (elapsed, ids))
    for proc in procs.values():
        proc.kill()
        proc.log_file.close()
