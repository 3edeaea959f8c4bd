// Bun.serve pub/sub broadcast server: every message goes to every other client through one
// topic (uWebSockets' shared-message publish; the sender is excluded). usage: bun pubsub.js PORT
const port = Number(process.argv[2] || 9107);
Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, server) {
    if (server.upgrade(req)) return;
    return new Response("WebSocket only", { status: 400 });
  },
  websocket: {
    open(ws) {
      ws.subscribe("room");
    },
    message(ws, message) {
      ws.publish("room", message);
    },
  },
});
console.error(`bun pubsub: listening on 127.0.0.1:${port}`);
