#!/usr/bin/python3
"""Debian's Prometheus scrapes a running fabu-coordinator with the shipped
alert rules (docs/ops/prometheus-alerts.yml) loaded, and every expression of
those rules and of the shipped Grafana dashboard (docs/ops/grafana-dashboard.json)
is evaluated by Prometheus itself.

Checks, each failing the run with what was wrong:
  - promtool accepts the rules file;
  - Prometheus scrapes the coordinator over TLS with a viewer's token (up == 1);
  - every rule is evaluated with health "ok" (no error);
  - every dashboard and rule expression is accepted by the query API;
  - every fabu_* metric a rule or a panel names is one the coordinator exposes
    (a misspelt name would make a panel empty or an alert silent for ever);
  - the running release's series are there (its waves and window).

Usage: prometheus_check.py --target HOST:PORT --ca FILE --token TOKEN
         --rules FILE --dashboard FILE --workdir DIR --release ID
"""
import argparse
import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 400 for a query Prometheus refuses
        return json.load(e)


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.load(r)


def wait(what, check, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last is True:
                return
        except OSError as e:  # not listening yet
            last = e
        time.sleep(0.5)
    fail("%s within %d s (last: %r)" % (what, seconds, last))


def expressions(rules_file, dashboard_file):
    import yaml  # python3-yaml

    out = []
    with open(rules_file) as f:
        for group in yaml.safe_load(f)["groups"]:
            for rule in group["rules"]:
                out.append(("rule " + rule["alert"], rule["expr"]))
    with open(dashboard_file) as f:
        for panel in json.load(f)["panels"]:
            for target in panel.get("targets", []):
                out.append(("panel '%s'" % panel["title"], target["expr"]))
    return out


def main():
    p = argparse.ArgumentParser()
    for name in ("target", "ca", "token", "rules", "dashboard", "workdir", "release"):
        p.add_argument("--" + name, required=True)
    a = p.parse_args()

    checked = subprocess.run(["/usr/bin/promtool", "check", "rules", a.rules],
                             capture_output=True, text=True)
    if checked.returncode != 0:
        fail("promtool check rules %s:\n%s%s" % (a.rules, checked.stdout, checked.stderr))

    with open(a.workdir + "/token", "w") as f:
        f.write(a.token)
    config = a.workdir + "/prometheus.yml"
    with open(config, "w") as f:
        json.dump({  # YAML is a superset of JSON
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [a.rules],
            "scrape_configs": [{
                "job_name": "fabu",
                "scheme": "https",
                "tls_config": {"ca_file": a.ca},
                "authorization": {"credentials_file": a.workdir + "/token"},
                "static_configs": [{"targets": [a.target]}],
            }],
        }, f)
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    log = open(a.workdir + "/prometheus.log", "w")
    server = subprocess.Popen(
        ["/usr/bin/prometheus", "--config.file=" + config,
         "--storage.tsdb.path=" + a.workdir + "/tsdb",
         "--web.listen-address=127.0.0.1:%d" % port,
         "--web.console.templates=" + a.workdir, "--web.console.libraries=" + a.workdir],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait("Prometheus ready", lambda: urllib.request.urlopen(
            base + "/-/ready", timeout=5).status == 200 or "not ready", 60)

        def up():
            r = query(base, 'up{job="fabu"}')["data"]["result"]
            return bool(r) and r[0]["value"][1] == "1" or r
        wait("a successful scrape of the coordinator", up, 60)

        def rules_ok():
            groups = get(base, "/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if not rules:
                return "no rules loaded"
            pending = [r["name"] for r in rules if r.get("health") != "ok"]
            bad = [(r["name"], r.get("lastError")) for r in rules if r.get("lastError")]
            if bad:
                fail("rules evaluated with errors: %r" % bad)
            return not pending or pending
        wait("every rule evaluated", rules_ok, 30)

        names = set(v["metric"]["__name__"] for v in
                    query(base, 'count by (__name__) ({job="fabu"})')["data"]["result"])
        problems = []
        for where, expr in expressions(a.rules, a.dashboard):
            answer = query(base, expr)
            if answer.get("status") != "success":
                problems.append("%s: Prometheus refuses %r: %s" % (where, expr, answer.get("error")))
            for name in set(re.findall(r"\bfabu_[a-z_]+", expr)):
                if name not in names:
                    problems.append("%s names %s, which the coordinator does not expose" %
                                    (where, name))
        wave = query(base, 'fabu_rollout_wave_hosts{release="%s",progress="total"}' % a.release)
        if not wave["data"]["result"]:
            problems.append("no fabu_rollout_wave_hosts series for the running release " + a.release)
        window = query(base, 'fabu_release_window_end_timestamp_seconds{release="%s"} - time()'
                       % a.release)["data"]["result"]
        if not window or float(window[0]["value"][1]) <= 0:
            problems.append("the running release's window end is not in the future: %r" % window)
        if problems:
            fail("\n  ".join([""] + problems))
        print("ok: %d expressions evaluated; %d fabu series names scraped" %
              (len(expressions(a.rules, a.dashboard)), len(names)))
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


if __name__ == "__main__":
    main()
