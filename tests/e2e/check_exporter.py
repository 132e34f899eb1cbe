#!/usr/bin/python3
"""A test service whose error rate the test controls, for the go-live checks
on metrics (tests/e2e/metric_checks_e2e_test.cpp).

It reads STATE (JSON: {"web-1": 0.01, ...}, a host's error ratio; a host not
in it has no series) on every request and serves, on 127.0.0.1:
  - GET /metrics: the ratios in Prometheus's text format, as
    fabu_test_error_ratio{host="web-1"} 0.01 (scraped by a real Prometheus);
  - GET /stats: {"errors": {"ratio": <the largest ratio>}, "hosts": N} (an
    http check's JSON endpoint; no "ratio" member when STATE is empty).
The port it listens on is written to PORT_FILE once it listens.

Usage: check_exporter.py STATE PORT_FILE
"""
import http.server
import json
import os
import sys

STATE, PORT_FILE = sys.argv[1], sys.argv[2]


def ratios():
    try:
        with open(STATE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        state = ratios()
        if self.path == "/metrics":
            lines = ["# TYPE fabu_test_error_ratio gauge"]
            for host, ratio in sorted(state.items()):
                lines.append('fabu_test_error_ratio{host="%s"} %r' % (host, float(ratio)))
            self.answer("text/plain; version=0.0.4", "\n".join(lines) + "\n")
        elif self.path.startswith("/stats"):
            errors = {"ratio": max(state.values())} if state else {}
            self.answer("application/json", json.dumps({"errors": errors, "hosts": len(state)}))
        else:
            self.send_error(404)

    def answer(self, content_type, body):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
