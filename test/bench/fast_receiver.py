#!/usr/bin/env python3
"""A webhook receiver for the delivery benchmark only: it answers 200 at once.

No signature check and no body kept (test/receiver/receiver.py does both, for
the tests): each request appends one line "<unix time> <webhook-id> <events>"
to --log, where <events> is 1, or for a batch the number of events in it
(occurrences of '"id": "evt_' in the body: counting them costs far less than
parsing 100 events per request in Python, which at 100,000 events/s took a
core of its own).

    fast_receiver.py --log FILE          prints its port, serves until SIGTERM
                     [--status 202]      the status of every answer (default 200)
    fast_receiver.py --client URL N      baseline: N keep-alive POSTs from one
                                         Python client, prints requests/s
"""
import argparse
import http.client
import http.server
import json
import signal
import sys
import threading
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        msg_id = self.headers.get("webhook-id", "-")
        n = 1
        if msg_id.startswith("batch_"):
            n = body.count(b'"id": "evt_')
        self.send_response(self.server.status)
        self.send_header("content-length", "0")
        self.end_headers()
        self.server.log.write("%.6f %s %d\n" % (time.time(), msg_id, n))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def client(url, n):
    """The baseline: how fast one keep-alive Python client gets answers."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    body = json.dumps({"id": "evt_1_1", "type": "access.granted", "timestamp": "2026-01-01T00:00:00Z",
                       "data": {"account": {"id": "1", "name": "alice"},
                                "entitlement": {"id": "2", "name": "editor"}}}).encode()
    t0 = time.time()
    for i in range(n):
        conn.request("POST", u.path, body, {"content-type": "application/json",
                                            "webhook-id": "base_%d" % i})
        conn.getresponse().read()
    print("%.0f" % (n / (time.time() - t0)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log")
    p.add_argument("--client", nargs=2, metavar=("URL", "N"))
    p.add_argument("--status", type=int, default=200)  # 202 for RFC 8935 (SETs)
    a = p.parse_args()
    if a.client:
        client(a.client[0], int(a.client[1]))
        return 0
    server = Server(("127.0.0.1", 0), Handler)
    server.log = open(a.log, "a", buffering=1)
    server.status = a.status
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
