"""The rooms scenario (issue 16): one server, two rooms, three Godot clients in each.

Clients A, B, C connect to ws://HOST:PORT/a and D, E, F to ws://HOST:PORT/b, and each trio runs
the main scenario (intros relayed to one peer, broadcasts, exclude-one, to -1, RPCs, leaving) as
if it had the server to itself. Checks: ids distinct across the server; each client is told of
the server and its two room-mates only; it receives every packet and RPC of its room-mates and
nothing from the other room; departures reach the leaver's room only. Needs a server with rooms
by path (`multipeer serve`, --server-cmd); any other server is skipped.

Called by scenarios.py with itself as `base` (Run, client_ok, note), standard library only.
"""

import time

ROOMS = {"a": ["A", "B", "C"], "b": ["D", "E", "F"]}


def scenario_rooms(opts, version, t, base):
    run = base.Run(opts, version, "rooms")
    tag = run.tag
    if run.server_behaviour() != "multipeer" or run.server_kind() != "external":
        t.skip(tag, "needs `multipeer serve` (--server-cmd with --server-core multipeer): rooms by path")
        return
    if not run.start_server():
        t.check("%s server listening" % tag, False, "port %s never opened" % run.port)
        run.finish(time.monotonic() + 1)
        return
    # The two rooms start together: their sessions overlap from the first packet to the last.
    for i in range(3):
        for room, names in ROOMS.items():
            run.start_client(names[i], "main", url="%s/%s" % (run.url, room), MP_PEERS=len(names))
        time.sleep(0.3)
    logs = run.finish(time.monotonic() + 40)
    c = {n: logs["client" + n] for names in ROOMS.values() for n in names}

    ids = {}
    for n, log in c.items():
        f = log.first("EVENT", "connected_to_server")
        ids[n] = int(f["id"]) if f and f.get("id", "").isdigit() else None
    t.check("%s ids assigned, distinct across both rooms" % tag,
            all(i is not None and i >= 2 for i in ids.values()) and len(set(ids.values())) == 6, str(ids))
    for n, log in c.items():
        base.client_ok(t, run, log, n)
    if any(i is None for i in ids.values()):
        return
    for room, names in ROOMS.items():
        others = [n for r, ns in ROOMS.items() if r != room for n in ns]
        foreign = {ids[o] for o in others}
        for n in names:
            mates = [m for m in names if m != n]
            seen = {int(f["id"]) for f in c[n].find("EVENT", "peer_connected") if f.get("id", "").isdigit()}
            t.check("%s /%s %s was told of the server and its two room-mates only" % (tag, room, n),
                    seen == {1, *(ids[m] for m in mates)}, "seen=%s" % sorted(seen))
            for m in mates:
                t.check("%s /%s %s got intro (targeted relay) and broadcast from %s" % (tag, room, n, m),
                        len(c[n].recv(frm=ids[m], text="intro|" + m)) == 1
                        and len(c[n].recv(frm=ids[m], text="bcast|" + m)) == 1
                        and len(c[n].recv(frm=ids[m], text="noserver|" + m)) == 1)
            from_foreign = [f for f in c[n].find("RECV") if f.get("from", "").lstrip("-").isdigit()
                            and int(f["from"]) in foreign]
            t.check("%s /%s %s received nothing from the other room" % (tag, room, n), not from_foreign,
                    "%d packets" % len(from_foreign))
        # RPC ring within the room: X calls greet on next(X).
        for i, sender in enumerate(names):
            target = names[(i + 1) % len(names)]
            got = c[target].find("RPC", "greet", **{"from": ids[sender], "arg": sender})
            t.check("%s /%s rpc_id greet %s -> %s received once with the right sender id"
                    % (tag, room, sender, target), len(got) == 1, "got=%d" % len(got))
        # The last name leaves first: its room-mates see it go, the other room never hears of it.
        leaver = names[-1]
        for n in names[:-1]:
            t.check("%s /%s %s saw %s leave" % (tag, room, n, leaver),
                    len(c[n].find("EVENT", "peer_disconnected", id=ids[leaver])) == 1)
        for o in others:
            t.check("%s %s (other room) never heard of %s" % (tag, o, leaver),
                    not c[o].find("EVENT", "peer_disconnected", id=ids[leaver]))
    base.note(tag, "ids %s" % ids)
