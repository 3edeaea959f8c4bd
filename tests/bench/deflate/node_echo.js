// npm ws echo server for deflate_bench.py: node node_echo.js PORT DEFLATE (1: perMessageDeflate
// on with ws's defaults, which leave messages under 1024 bytes uncompressed; ws's server default
// is off). Prints `listening` once bound.
'use strict';
const WebSocket = require('ws');
const [port, deflate] = process.argv.slice(2);
const server = new WebSocket.Server({ host: '127.0.0.1', port: Number(port), perMessageDeflate: deflate === '1', maxPayload: 1 << 20 });
server.on('listening', () => console.log('listening'));
server.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
