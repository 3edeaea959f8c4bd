#!/usr/bin/env python3
"""Headless Chromium's own WebSocket against a server under test, for tests/interop/deflate/run.sh.

usage: chromium_deflate.py WS_URL [ROUNDS] [TIMEOUT_S]

Serves a page on http://127.0.0.1:<free port>/ that opens `new WebSocket(WS_URL)` (Chromium
offers `permessage-deflate; client_max_window_bits` on every WebSocket), sends ROUNDS (default 5)
rounds of JSON text of about 200 B, 2 KiB and 32 KiB, each after the previous echo, checks every
echo and closes with 1000. The page POSTs its lines back: `extensions <ws.extensions>`, then
`done` or `fail REASON`. Exit 0 when the extension was agreed and every echo matched. Whether
messages really went compressed is read from the server's own counters by the caller.
Standard library only; loopback only.
"""
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

PAGE = b"""<!doctype html><meta charset="utf-8"><title>deflate</title><script>
const q = new URLSearchParams(location.search);
const report = (line) => fetch('/log', {method: 'POST', body: line});
function jsonMessage(size, seed) {
  const players = [];
  let x = seed * 7919 + 1, length = 40;
  while (length < size) {
    x = (x * 48271) % 2147483647;
    const p = {id: x % 100000, name: 'player_' + (x % 4096), x: (x % 200000) / 100,
               y: ((x >> 5) % 200000) / 100, hp: x % 101, team: ['red', 'blue', 'green', 'gold'][x % 4]};
    const text = JSON.stringify(p);
    players.push(text);
    length += text.length + 1;
  }
  return '{"type":"state","tick":' + seed + ',"players":[' + players.join(',') + ']}';
}
const messages = [];
for (let r = 0; r < Number(q.get('rounds')); r++) for (const size of [200, 2048, 32768]) messages.push(jsonMessage(size, r));
let echoed = 0, finished = false;
const finish = async (line) => { if (!finished) { finished = true; await report(line); await report('exit'); } };
const ws = new WebSocket(q.get('ws'));
ws.onopen = async () => {
  await report('extensions ' + ws.extensions);
  if (!ws.extensions.includes('permessage-deflate')) return finish('fail permessage-deflate not agreed');
  ws.send(messages[0]);
};
ws.onmessage = (e) => {
  if (e.data !== messages[echoed]) return finish('fail echo ' + echoed + ' differs');
  echoed += 1;
  if (echoed < messages.length) ws.send(messages[echoed]); else ws.close(1000, 'done');
};
ws.onclose = (e) => finish(echoed === messages.length && e.code === 1000 ? 'done'
                              : 'fail closed with ' + e.code + ' after ' + echoed + ' echoes');
</script>"""

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def main():
    ws_url = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 40.0
    state = {"ok": False, "agreed": False, "over": threading.Event()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if urllib.parse.urlparse(self.path).path not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def do_POST(self):
            line = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
            self.send_response(204)
            self.end_headers()
            if line == "exit":
                state["over"].set()
                return
            print(line, flush=True)
            if line.startswith("extensions ") and "permessage-deflate" in line:
                state["agreed"] = True
            state["ok"] |= line == "done"

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    query = urllib.parse.urlencode({"ws": ws_url, "rounds": rounds})
    profile = tempfile.mkdtemp(prefix="mp-deflate-chromium-")
    browser = subprocess.Popen(
        ["chromium", *FLAGS, f"--user-data-dir={profile}", f"http://127.0.0.1:{server.server_address[1]}/?{query}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not state["over"].wait(timeout):
            print(f"fail the page did not finish within {timeout} s", flush=True)
    finally:
        browser.kill()
        browser.wait()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return 0 if state["ok"] and state["agreed"] else 1


if __name__ == "__main__":
    sys.exit(main())
