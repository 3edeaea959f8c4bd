// Load client of deflate_bench.py (npm ws, zlib in C): node load.js MODE URL ...
//   echo URL SIZE CONNS SECS DEFLATE  CONNS connections each send JSON text of about SIZE bytes,
//                                     one at a time after its echo, for SECS seconds; offers
//                                     permessage-deflate (compressing every message) when
//                                     DEFLATE is 1. Prints {"messages", "seconds", "extensions",
//                                     "server_in", "server_out"} (TCP payload bytes each way).
//   idle URL CONNS DEFLATE            opens CONNS connections, each sends one 2 KiB message and
//                                     reads its echo, prints "ready" and holds them until stdin
//                                     closes.
'use strict';
const WebSocket = require('ws');

function jsonMessage(size, seed) {
  const teams = ['red', 'blue', 'green', 'gold'];
  let x = (seed * 2654435761 + 12345) >>> 0;
  const players = [];
  let length = 40;
  while (length < size) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const p = `{"id":${x % 100000},"name":"player_${(x >>> 20) & 0xfff}","x":${(x >>> 8) % 2000}.${x % 100},` +
      `"y":${(x >>> 12) % 2000}.${(x >>> 3) % 100},"hp":${(x >>> 16) % 101},"team":"${teams[x & 3]}"}`;
    players.push(p);
    length += p.length + 1;
  }
  return `{"type":"state","tick":${seed},"players":[${players.join(',')}]}`;
}

function open(url, deflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: deflate ? { threshold: 0 } : false, maxPayload: 1 << 20 });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

async function echo(url, size, conns, secs, deflate) {
  const messages = Array.from({ length: 16 }, (_, i) => jsonMessage(size, i));
  const sockets = await Promise.all(Array.from({ length: conns }, () => open(url, deflate)));
  // TCP payload bytes each way after the handshakes: what the server read and wrote.
  const wire = () => sockets.reduce((a, ws) => [a[0] + ws._socket.bytesWritten, a[1] + ws._socket.bytesRead], [0, 0]);
  const wire0 = wire();
  const end = Date.now() + secs * 1000;
  const started = Date.now();
  let total = 0;
  await Promise.all(sockets.map((ws, c) => new Promise((resolve, reject) => {
    let i = c;
    ws.on('message', (data) => {
      if (data.length !== messages[i % 16].length) return reject(new Error('echo differs'));
      total += 1;
      i += 1;
      if (Date.now() < end) ws.send(messages[i % 16]); else resolve();
    });
    ws.send(messages[i % 16]);
  })));
  const seconds = (Date.now() - started) / 1000;
  const wire1 = wire();
  console.log(JSON.stringify({ messages: total, seconds, extensions: sockets[0].extensions,
    server_in: wire1[0] - wire0[0], server_out: wire1[1] - wire0[1] }));
  sockets.forEach((ws) => ws.terminate());
}

async function idle(url, conns, deflate) {
  const message = jsonMessage(2048, 1);
  const sockets = [];
  for (let i = 0; i < conns; i++) sockets.push(await open(url, deflate));
  await Promise.all(sockets.map((ws) => new Promise((resolve) => { ws.once('message', resolve); ws.send(message); })));
  console.log(`ready ${sockets[0].extensions || '(none)'}`);
  process.stdin.resume();
  process.stdin.on('end', () => { sockets.forEach((ws) => ws.terminate()); process.exit(0); });
}

const [mode, url, ...rest] = process.argv.slice(2);
const main = mode === 'echo' ? echo(url, Number(rest[0]), Number(rest[1]), Number(rest[2]), rest[3] === '1')
  : mode === 'idle' ? idle(url, Number(rest[0]), rest[1] === '1') : Promise.reject(new Error('usage'));
main.catch((e) => { console.error(e.message); process.exit(1); });
