// Bun.serve echo server for deflate_bench.py: bun bun_echo.js PORT DEFLATE (1: perMessageDeflate
// on, Bun's default being off, and every echo sent with compression asked for: Bun compresses a
// message only when `send` is told to).
const [port, deflate] = process.argv.slice(2);
const compress = deflate === "1";
Bun.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  fetch(req, server) {
    if (server.upgrade(req)) return;
    return new Response("WebSocket only", { status: 400 });
  },
  websocket: {
    maxPayloadLength: 1 << 20,
    perMessageDeflate: compress,
    message(ws, message) {
      ws.send(message, compress);
    },
  },
});
console.log("listening");
