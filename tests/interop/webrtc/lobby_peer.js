// A mesh peer for Godot's webrtc_signaling lobby protocol, shared by the browser page and the
// node-datachannel peer. It follows the same rules as the Rust `mesh_node`:
//
// * join the lobby (mesh mode); for every peer announced, create a connection with Godot's
//   three negotiated channels (1 "reliable"; 2 "ordered" and 3 "unreliable" with
//   maxPacketLifeTime = 1 ms, 3 unordered); the higher id of each pair sends the offer;
// * once all three channels of a peer are open: print `connected ID`, send COUNT binary
//   packets on each lane (`r:SEQ`, `o:SEQ`, `u:SEQ`);
// * after all COUNT reliable packets of a peer arrived (in order), send it `fin` on the
//   reliable lane; a peer is complete when its `fin` arrived too: print
//   `result ID reliable=R ordered=O unreliable=U`;
// * a broken rule or a closed connection ends that pair only: print `pairfail ID REASON` and
//   close it, so that one failing pair (say, between two third-party stacks) does not tear
//   down the others before they complete;
// * `path ID LOCAL REMOTE LOCAL_TYPE REMOTE_TYPE` after a result, when the backend has
//   `path()` (a promise or value of that text): the candidate pair the traffic went over;
// * `done` when PEERS peers are complete; `fail REASON` once every pair ended and one failed,
//   or at the timeout.
//
// The WebRTC stack comes from a backend: `backend.create(remoteId, offerer, events)` returns
// { setRemote(type, sdp), addCandidate(mid, index, candidate), send(lane, bytes), close(),
// optionally path() } and
// calls events.{description(type, sdp), candidate(mid, index, candidate), open(lane),
// message(lane, bytes), closed()}; lanes are 0, 1, 2 for streams 1, 2, 3.

// eslint-disable-next-line no-unused-vars
function runLobbyPeer({ WebSocket, backend, print, url, lobby, peers, count, timeoutMs }) {
  const LANES = ['r', 'o', 'u'];
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  return new Promise((resolve) => {
    let myId = null;
    let complete = 0;
    let failedPairs = 0;
    let finished = false;
    const conns = new Map();
    const ws = new WebSocket(url);
    const finish = (ok, line) => {
      if (finished) return;
      finished = true;
      print(line);
      clearTimeout(timer);
      // Linger so that our last packets and acknowledgements (a `fin` to a complete peer)
      // get through, even when another pair failed.
      setTimeout(() => {
        for (const c of conns.values()) c.rtc.close();
        try { ws.close(); } catch (e) { /* already closed */ }
        resolve(ok);
      }, complete > 0 ? 500 : 0);
    };
    const fail = (why) => finish(false, `fail ${why}`);
    const timer = setTimeout(() => {
      const state = [...conns.entries()].map(([id, c]) => `${id}:${c.counts}/fin=${c.finIn}/${c.finOut}`);
      fail(`timeout (${complete} of ${peers} peers complete; ${state.join(' ')})`);
    }, timeoutMs);
    // One pair broke a rule or closed early: end that pair, keep the others going.
    const pairFail = (id, c, why) => {
      if (finished || c.done || c.failed) return;
      c.failed = true;
      failedPairs++;
      print(`pairfail ${id} ${why}`);
      try { c.rtc.close(); } catch (e) { /* already closed */ }
      if (complete + failedPairs >= peers) fail(`${failedPairs} of ${peers} pairs failed`);
    };
    const send = (type, id, data) => ws.send(JSON.stringify({ type, id, data }));

    function addPeer(id) {
      const c = { open: 0, counts: [0, 0, 0], last: [-1, -1], seen: new Set(), finIn: false, finOut: false, done: false };
      c.rtc = backend.create(id, myId > id, {
        description: (type, sdp) => send(type === 'offer' ? 4 : 5, id, sdp),
        candidate: (mid, index, cand) => send(6, id, `\n${mid}\n${index}\n${cand}`),
        open: () => {
          if (++c.open !== 3) return;
          print(`connected ${id}`);
          for (let lane = 0; lane < 3; lane++) {
            for (let seq = 0; seq < count; seq++) c.rtc.send(lane, enc.encode(`${LANES[lane]}:${seq}`));
          }
        },
        message: (lane, bytes) => receive(id, c, lane, dec.decode(bytes)),
        closed: () => pairFail(id, c, 'closed before completing'),
      });
      conns.set(id, c);
    }

    function receive(id, c, lane, text) {
      if (finished || c.failed) return;
      if (text === 'fin') {
        if (lane !== 0) return pairFail(id, c, `fin on lane ${lane}`);
        c.finIn = true;
      } else {
        const [tag, seqText] = text.split(':');
        const seq = Number(seqText);
        if (tag !== LANES[lane] || !Number.isInteger(seq) || seq < 0 || seq >= count) {
          return pairFail(id, c, `${JSON.stringify(text)} on lane ${lane}`);
        }
        if (lane === 0 && seq !== c.counts[0]) return pairFail(id, c, `reliable ${seq} after ${c.counts[0]}`);
        if (lane === 1) {
          if (seq <= c.last[0]) return pairFail(id, c, `ordered ${seq} after ${c.last[0]}`);
          c.last[0] = seq;
        }
        if (lane === 2) {
          if (c.seen.has(seq)) return pairFail(id, c, `unreliable ${seq} twice`);
          c.seen.add(seq);
        }
        c.counts[lane]++;
        if (lane === 0 && c.counts[0] === count && !c.finOut) {
          c.finOut = true;
          c.rtc.send(0, enc.encode('fin'));
        }
      }
      if (c.finIn && c.finOut && !c.done) {
        c.done = true;
        complete++;
        print(`result ${id} reliable=${c.counts[0]} ordered=${c.counts[1]} unreliable=${c.counts[2]}`);
        // The selected candidate pair, where the backend can tell (printed within the linger).
        if (c.rtc.path) {
          Promise.resolve().then(() => c.rtc.path()).then((p) => { if (p) print(`path ${id} ${p}`); }, () => {});
        }
        if (complete >= peers) finish(true, 'done');
        else if (complete + failedPairs >= peers) fail(`${failedPairs} of ${peers} pairs failed`);
      }
    }

    ws.onopen = () => send(0, 0, lobby); // id 0: a mesh lobby
    ws.onerror = () => fail('lobby connection error');
    ws.onclose = () => { if (myId === null) fail('lobby closed before our id'); };
    ws.onmessage = (event) => {
      let m;
      try { m = JSON.parse(typeof event.data === 'string' ? event.data : dec.decode(event.data)); } catch (e) { return fail('bad lobby message'); }
      switch (m.type) {
        case 0: print(`lobby ${m.data}`); break;
        case 1: myId = m.id; print(`id ${m.id}`); break;
        case 2: addPeer(m.id); break;
        case 3: break;
        case 4: case 5: {
          const c = conns.get(m.id);
          if (c) c.rtc.setRemote(m.type === 4 ? 'offer' : 'answer', m.data);
          break;
        }
        case 6: {
          const parts = m.data.split('\n').filter((p) => p.length > 0);
          const c = conns.get(m.id);
          if (c && parts.length === 3) c.rtc.addCandidate(parts[0], Number(parts[1]), parts[2]);
          break;
        }
        default: break;
      }
    };
  });
}

if (typeof module !== 'undefined') module.exports = { runLobbyPeer };
