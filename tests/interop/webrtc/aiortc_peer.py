#!/usr/bin/env python3
"""aiortc as a lobby mesh peer: Godot's negotiated channels 1-3 (2 and 3 with
maxPacketLifeTime 1 ms, 3 unordered), signalled through the lobby server, with the same rules
and output lines as mesh_node and lobby_peer.js (lobby, id, connected, result, done / fail).

usage: aiortc_peer.py LOBBY_URL LOBBY_NAME PEERS COUNT [TIMEOUT_S]
aiortc does not trickle: its descriptions carry every candidate (gathered on 127.0.0.1 only).
Needs: pip install aiortc websockets.
"""
import asyncio, json, sys

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from websockets.asyncio.client import connect

# aioice skips loopback when gathering; keep every ICE packet on 127.0.0.1.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

LANES = "rou"


def say(line):
    print(line, flush=True)


class Peer:
    def __init__(self, remote, count, on_event):
        self.remote, self.count = remote, count
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.counts, self.last, self.seen = [0, 0, 0], -1, set()
        self.fin_in = self.fin_out = self.done = False
        self.open = 0
        self.on_event = on_event
        specs = [("reliable", dict(ordered=True)),
                 ("ordered", dict(ordered=True, maxPacketLifeTime=1)),
                 ("unreliable", dict(ordered=False, maxPacketLifeTime=1))]
        self.channels = []
        for lane, (label, opts) in enumerate(specs):
            ch = self.pc.createDataChannel(label, negotiated=True, id=lane + 1, **opts)
            ch.on("open", lambda lane=lane: self.opened(lane))
            ch.on("message", lambda m, lane=lane: self.receive(lane, m))
            self.channels.append(ch)

        @self.pc.on("connectionstatechange")
        def state():
            if self.pc.connectionState in ("failed", "closed") and not self.done:
                self.on_event("fail", f"peer {remote} {self.pc.connectionState} before completing")

    def opened(self, _lane):
        self.open += 1
        if self.open == 3:
            say(f"connected {self.remote}")
            for lane, ch in enumerate(self.channels):
                for seq in range(self.count):
                    ch.send(f"{LANES[lane]}:{seq}".encode())

    def receive(self, lane, message):
        text = message.decode() if isinstance(message, bytes) else message
        if text == "fin":
            if lane != 0:
                return self.on_event("fail", f"fin from {self.remote} on lane {lane}")
            self.fin_in = True
        else:
            tag, _, seq = text.partition(":")
            if tag != LANES[lane] or not seq.isdigit() or int(seq) >= self.count:
                return self.on_event("fail", f"from {self.remote}: {text!r} on lane {lane}")
            seq = int(seq)
            if lane == 0 and seq != self.counts[0]:
                return self.on_event("fail", f"from {self.remote}: reliable {seq} after {self.counts[0]}")
            if lane == 1:
                if seq <= self.last:
                    return self.on_event("fail", f"from {self.remote}: ordered {seq} after {self.last}")
                self.last = seq
            if lane == 2:
                if seq in self.seen:
                    return self.on_event("fail", f"from {self.remote}: unreliable {seq} twice")
                self.seen.add(seq)
            self.counts[lane] += 1
            if lane == 0 and self.counts[0] == self.count and not self.fin_out:
                self.fin_out = True
                self.channels[0].send(b"fin")
        if self.fin_in and self.fin_out and not self.done:
            self.done = True
            say(f"result {self.remote} reliable={self.counts[0]} ordered={self.counts[1]} unreliable={self.counts[2]}")
            self.on_event("complete", None)


async def main():
    url, lobby, peers, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
    outcome = asyncio.get_running_loop().create_future()
    conns, complete = {}, [0]

    def on_event(kind, detail):
        if outcome.done():
            return
        if kind == "fail":
            outcome.set_result(detail)
        elif kind == "complete":
            complete[0] += 1
            if complete[0] >= peers:
                outcome.set_result(None)

    async with connect(url) as ws:
        async def send(kind, to, data):
            await ws.send(json.dumps({"type": kind, "id": to, "data": data}))

        async def describe(peer, kind):
            d = await (peer.pc.createOffer() if kind == "offer" else peer.pc.createAnswer())
            await peer.pc.setLocalDescription(d)
            await send(4 if kind == "offer" else 5, peer.remote, peer.pc.localDescription.sdp)

        async def lobby_loop():
            my_id = None
            async for text in ws:
                m = json.loads(text)
                kind, peer_id, data = m.get("type"), m.get("id"), m.get("data", "")
                if kind == 0:
                    say(f"lobby {data}")
                elif kind == 1:
                    my_id = peer_id
                    say(f"id {peer_id}")
                elif kind == 2:
                    peer = conns[peer_id] = Peer(peer_id, count, on_event)
                    if my_id > peer_id:
                        await describe(peer, "offer")
                elif kind in (4, 5) and peer_id in conns:
                    peer = conns[peer_id]
                    sdp_type = "offer" if kind == 4 else "answer"
                    await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=data, type=sdp_type))
                    if kind == 4:
                        await describe(peer, "answer")
                elif kind == 6 and peer_id in conns:
                    parts = [p for p in data.split("\n") if p]
                    if len(parts) == 3 and parts[2].startswith("candidate:"):
                        c = candidate_from_sdp(parts[2].split(":", 1)[1])
                        c.sdpMid, c.sdpMLineIndex = parts[0], int(parts[1])
                        await conns[peer_id].pc.addIceCandidate(c)

        await send(0, 0, lobby)
        reader = asyncio.create_task(lobby_loop())
        try:
            failure = await asyncio.wait_for(outcome, timeout)
        except asyncio.TimeoutError:
            state = " ".join(f"{p}:{c.counts}/fin={c.fin_in}/{c.fin_out}" for p, c in conns.items())
            failure = f"timeout ({complete[0]} of {peers} peers complete; {state})"
        if failure is None:
            say("done")
            await asyncio.sleep(0.5)  # let the last packets and acknowledgements through
        else:
            say(f"fail {failure}")
        reader.cancel()
        for peer in conns.values():
            await peer.pc.close()
    return failure is None


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
