#!/usr/bin/env python3
"""Headless Chromium as a lobby mesh peer: serves page.html (and lobby_peer.js) on
http://127.0.0.1:<free port>/, opens it in Chromium, and prints the lines the page POSTs to
/log (the same lines as mesh_node: lobby, id, connected, result, done / fail).

usage: chromium_peer.py LOBBY_URL LOBBY_NAME PEERS COUNT [TIMEOUT_S [KEY=VALUE...]]
KEY=VALUE pairs go to the page's query string (the NAT lab: ice=JSON iceServers, policy=relay).
Exit 0 when the page printed `done`. Run it inside a network namespace that has only `lo`
(`unshare -n`): Chromium then has no other interface to offer; or, with iceServers, inside a
NAT lab namespace. Standard library only.
"""
import http.server, os, shutil, subprocess, sys, tempfile, threading, time, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         # Loopback host candidates, no mDNS names; the fake media grant lets Chromium
         # enumerate loopback at all.
         "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def main():
    lobby, name, peers, count = sys.argv[1:5]
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 40.0
    outcome = {"ok": False, "over": threading.Event()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = urllib.parse.urlparse(self.path).path.lstrip("/") or "page.html"
            if path not in ("page.html", "lobby_peer.js"):
                self.send_error(404)
                return
            body = open(os.path.join(HERE, path), "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if path.endswith(".html") else "text/javascript")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            line = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
            self.send_response(204)
            self.end_headers()
            if line == "exit":
                outcome["over"].set()
                return
            print(line, flush=True)
            if line == "done":
                outcome["ok"] = True
            if line.startswith("fail"):
                outcome["over"].set()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    extra = dict(arg.split("=", 1) for arg in sys.argv[6:])
    query = urllib.parse.urlencode({"lobby": lobby, "name": name, "peers": peers, "count": count, **extra})
    url = f"http://127.0.0.1:{server.server_address[1]}/page.html?{query}"
    profile = tempfile.mkdtemp(prefix="mp-chromium-")
    browser = subprocess.Popen(["chromium", *FLAGS, f"--user-data-dir={profile}", url],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not outcome["over"].wait(timeout):
            print(f"fail chromium page timed out after {timeout} s", flush=True)
    finally:
        browser.kill()
        browser.wait()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
