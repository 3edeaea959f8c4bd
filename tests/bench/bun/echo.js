// Bun.serve WebSocket echo server (uWebSockets inside Bun). usage: bun echo.js PORT
const port = Number(process.argv[2] || 9106);
Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, server) {
    if (server.upgrade(req)) return;
    return new Response("WebSocket only", { status: 400 });
  },
  websocket: {
    // 64 KiB messages in the 10 x 64 KiB case; Bun's other defaults stay.
    maxPayloadLength: 1 << 20,
    message(ws, message) {
      ws.send(message);
    },
  },
});
console.error(`bun echo: listening on 127.0.0.1:${port}`);
