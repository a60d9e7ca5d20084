#!/usr/bin/env python3
"""`provdb ui`'s /api/query latency against `provdb query --format json`, and the page's load
time in headless Chromium.

    python3 benches/ui_latency.py ARCHIVE [PROVDB_BINARY] [RUNS] [--page-loads N] [--alerts]

Starts `provdb ui` on ARCHIVE (a free loopback port), then for each of the five pinned query
forms of tests/query_forms.rs (ids of the wget sample: give an archive holding
v0.5.0-w3c-wget.log, such as the samples' archive or the 1M-edge one of benches/query.rs)
takes the median and p99 wall time of RUNS (default 20) GETs of /api/query on one kept-alive
connection and of RUNS runs of the CLI (a fresh process: start, opening the archive, the
query, the JSON on stdout), and checks both printed the same bytes. The page's assets: the
median time to fetch /, /app.js and /app.css.

The page (`--page-loads N`, default 20; 0 leaves it out; needs chromium, chromium-driver and
Python's selenium): N fresh loads (from about:blank, browser cache cleared) of
`/?q=FORM` for forms 3 and 4 and of `/?view=alerts`, each timed from the navigation's start to
the page's first painted result, the `provdb:results` or `provdb:alerts` performance mark that
app.js sets once the table and graph (or the alert list) are drawn and a frame has been
painted; beside it the navigation's load event and the /api request's own time (Resource
Timing). Median and p99 over the N loads.

`--alerts`: ARCHIVE is copied to a temporary folder (ARCHIVE itself is never opened for
writing) and the twelve attack scenarios of `provdb simulate --scenario all` are imported into
the copy, so that the alert list has alerts to show; every figure is then taken on the copy.
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

V2 = "AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA="
FORMS = [
    "() -[e:read]-> () | count",
    f"(v {{id:'{V2}'}}) <-[*1..3]- (a) | dedup a | count",
    f"(v {{id:'{V2}'}}) -[*1..5]-> (d) | dedup d | return d.id, d.type",
    "(p:path {pathname:'/usr/bin/wget'}) -[:named]-> (f) | return f.id, f.type",
    "(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid",
]
# The forms the page is loaded with: a few rows (3), and a thousand rows and vertices (4).
PAGE_FORMS = [3, 4]


def percentile(values, p):
    """The p-th percentile, nearest rank (of 20 values, p99 is the slowest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[rank - 1]


def summary(values):
    return statistics.median(values), percentile(values, 99)


def with_scenarios(provdb, archive, work):
    """A copy of `archive` with the attack scenarios imported (their alerts)."""
    copy = os.path.join(work, "archive")
    shutil.copytree(archive, copy)
    logs = os.path.join(work, "scenarios")
    subprocess.run([provdb, "simulate", "--scenario", "all", "--documents", "2", "--out", logs],
                   capture_output=True, check=True)
    files = sorted(os.path.join(logs, f) for f in os.listdir(logs) if f.endswith(".log"))
    subprocess.run([provdb, "--db", copy, "import", "--quiet", *files],
                   capture_output=True, check=True)
    return copy


class Ui:
    """`provdb ui` on a free port, and one kept-alive connection to it."""

    def __init__(self, provdb, archive):
        self.process = subprocess.Popen([provdb, "--db", archive, "ui", "--listen", "127.0.0.1:0"],
                                        stdout=subprocess.PIPE, text=True)
        self.addr = self.process.stdout.readline().strip().removeprefix("provdb ui: http://")
        self.addr = self.addr.rstrip("/")
        host, port = self.addr.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port))

    def get(self, path):
        self.conn.request("GET", path, headers={"Host": self.addr})
        r = self.conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:200])
        return body

    def stop(self):
        self.process.terminate()
        self.process.wait()


def timed_ms(action, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        action()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def api_against_cli(ui, provdb, archive, runs):
    page = statistics.median(timed_ms(lambda: [ui.get(p) for p in ("/", "/app.js", "/app.css")],
                                      runs))
    print(f"page assets (/, app.js, app.css): median {page:.2f} ms")
    print(f"{'form':<6}{'rows':>6}{'/api/query median':>19}{'p99':>9}"
          f"{'CLI median':>12}{'p99':>9}  (ms)")
    for i, q in enumerate(FORMS, 1):
        path = "/api/query?q=" + urllib.parse.quote(q, safe="")
        cli = [provdb, "--db", archive, "query", "--format", "json", q]
        api_body = ui.get(path)
        cli_body = subprocess.run(cli, capture_output=True, check=True).stdout
        assert api_body == cli_body, f"form {i}: the API and the CLI differ"
        api = summary(timed_ms(lambda: ui.get(path), runs))
        cli = summary(timed_ms(lambda: subprocess.run(cli, capture_output=True, check=True), runs))
        rows = len(json.loads(api_body))
        print(f"{i:<6}{rows:>6}{api[0]:>19.1f}{api[1]:>9.1f}{cli[0]:>12.1f}{cli[1]:>9.1f}",
              flush=True)


# Reads, in the page, the mark and the navigation's and the API request's timings.
TIMINGS_JS = """
const mark = performance.getEntriesByName(arguments[0], 'mark')[0];
if (!mark) return null;
const nav = performance.getEntriesByType('navigation')[0];
const api = performance.getEntriesByType('resource')
  .filter((r) => r.name.includes(arguments[1]))[0];
return {painted: mark.startTime, load: nav ? nav.loadEventEnd - nav.startTime : null,
        api: api ? api.duration : null};
"""


def page_loads(ui, loads):
    # The browser test's headless Chromium, with the same options.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "browser"))
    sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
    from ui_page import browser
    driver = browser()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        cases = [(f"form {i}: /?q=", "/?q=" + urllib.parse.quote(FORMS[i - 1], safe=""),
                  "provdb:results", "/api/graph") for i in PAGE_FORMS]
        cases.append(("alerts: /?view=alerts", "/?view=alerts", "provdb:alerts", "/api/alerts"))
        print(f"page loads, {loads} each, navigation start to first painted result "
              f"(the load event; the API request) in ms:")
        for name, path, mark, api in cases:
            painted, load, api_ms = [], [], []
            for _ in range(loads):
                driver.get("about:blank")
                driver.execute_cdp_cmd("Network.clearBrowserCache", {})
                driver.get(f"http://{ui.addr}{path}")
                deadline = time.time() + 120
                t = None
                while t is None and time.time() < deadline:
                    t = driver.execute_script(TIMINGS_JS, mark, api)
                    if t is None:
                        time.sleep(0.01)
                assert t is not None, f"{name}: no {mark} mark within 120 s"
                painted.append(t["painted"])
                load.append(t["load"] or 0)
                api_ms.append(t["api"] or 0)
            p, l, a = summary(painted), summary(load), summary(api_ms)
            print(f"  {name:<24} painted median {p[0]:7.0f} p99 {p[1]:7.0f}   "
                  f"(load {l[0]:5.0f} / {l[1]:5.0f}; {api} {a[0]:6.0f} / {a[1]:6.0f})",
                  flush=True)
    finally:
        driver.quit()


def main():
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("archive")
    args.add_argument("provdb", nargs="?", default="target/release/provdb")
    args.add_argument("runs", nargs="?", type=int, default=20)
    args.add_argument("--page-loads", type=int, default=20)
    args.add_argument("--alerts", action="store_true")
    a = args.parse_args()
    provdb = os.path.abspath(a.provdb)
    with tempfile.TemporaryDirectory(prefix="provdb-ui-bench-") as work:
        archive = with_scenarios(provdb, a.archive, work) if a.alerts else a.archive
        ui = Ui(provdb, archive)
        try:
            alerts = len(json.loads(ui.get("/api/alerts")))
            print(f"archive {a.archive}{' + the attack scenarios' if a.alerts else ''}: "
                  f"{alerts} alerts; {os.cpu_count()} cores")
            api_against_cli(ui, provdb, archive, a.runs)
            if a.page_loads:
                page_loads(ui, a.page_loads)
        finally:
            ui.stop()


if __name__ == "__main__":
    main()
