#!/usr/bin/env node
// node `ws` with permessage-deflate, for tests/interop/deflate/run.sh.
//
//   node deflate_peer.js server          echo server on 127.0.0.1:<free port>; prints
//                                        `listening 127.0.0.1:PORT`, then per connection
//                                        `extensions <negotiated>`; compresses every message
//                                        (perMessageDeflate on, threshold 0; ws's server default is off)
//   node deflate_peer.js client URL [N]  offers permessage-deflate (ws's client default), sends N
//                                        rounds of JSON text of about 200 B, 2 KiB and 32 KiB, each
//                                        after the previous echo, checks every echo, closes 1000;
//                                        prints `extensions ...` and `ok` or `fail REASON`
// Loopback only; the client gives up after 30 s.
'use strict';
const WebSocket = require('ws');

function jsonMessage(size, seed) {
  const teams = ['red', 'blue', 'green', 'gold'];
  let x = (seed * 2654435761 + 12345) >>> 0;
  const next = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x; };
  const players = [];
  let length = 40;
  while (length < size) {
    const r = next();
    const p = `{"id":${r % 100000},"name":"player_${(r >>> 20) & 0xfff}","x":${(r >>> 8) % 2000}.${r % 100},` +
      `"y":${(r >>> 12) % 2000}.${(r >>> 3) % 100},"hp":${(r >>> 16) % 101},"team":"${teams[r & 3]}"}`;
    players.push(p);
    length += p.length + 1;
  }
  return `{"type":"state","tick":${seed},"players":[${players.join(',')}]}`;
}

const [mode, url, rounds = '5'] = process.argv.slice(2);
if (mode === 'server') {
  const server = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0 } });
  server.on('listening', () => console.log(`listening 127.0.0.1:${server.address().port}`));
  server.on('connection', (ws) => {
    console.log(`extensions ${ws.extensions}`);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
} else if (mode === 'client' && url) {
  const messages = [];
  for (let r = 0; r < Number(rounds); r++) for (const size of [200, 2048, 32768]) messages.push(jsonMessage(size, r));
  const ws = new WebSocket(url, { perMessageDeflate: true });
  let echoed = 0;
  const fail = (why) => { console.log(`fail ${why}`); process.exit(1); };
  const timer = setTimeout(() => fail(`timed out with ${echoed} of ${messages.length} echoes`), 30000);
  ws.on('open', () => {
    console.log(`extensions ${ws.extensions}`);
    if (!ws.extensions.includes('permessage-deflate')) fail('permessage-deflate not agreed');
    ws.send(messages[0]);
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary || data.toString() !== messages[echoed]) fail(`echo ${echoed} differs`);
    echoed += 1;
    if (echoed < messages.length) ws.send(messages[echoed]);
    else ws.close(1000, 'done');
  });
  ws.on('close', (code) => {
    clearTimeout(timer);
    if (echoed === messages.length && code === 1000) { console.log('ok'); process.exit(0); }
    fail(`closed with ${code} after ${echoed} echoes`);
  });
  ws.on('error', (e) => fail(e.message));
} else {
  console.error('usage: deflate_peer.js server | client URL [ROUNDS]');
  process.exit(2);
}
