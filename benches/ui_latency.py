#!/usr/bin/env python3
"""`provdb ui`'s /api/query latency against `provdb query --format json`, and the page's load.

    python3 benches/ui_latency.py ARCHIVE [PROVDB_BINARY] [RUNS]

Starts `provdb ui` on ARCHIVE (a free loopback port), then for each of the five pinned query
forms of tests/query_forms.rs (ids of the wget sample: give an archive holding
v0.5.0-w3c-wget.log and v0.2.2-w3c-badlog.log) takes the median wall time of RUNS (default 20)
GETs of /api/query on one kept-alive connection and of RUNS runs of the CLI (process start,
opening the archive, the query, the JSON on stdout), and checks both printed the same bytes.
The page: the median time to fetch /, /app.js and /app.css (what a browser loads before it
asks for data).
"""

import http.client
import statistics
import subprocess
import sys
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


def main():
    archive = sys.argv[1]
    provdb = sys.argv[2] if len(sys.argv) > 2 else "target/release/provdb"
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    ui = subprocess.Popen([provdb, "--db", archive, "ui", "--listen", "127.0.0.1:0"],
                          stdout=subprocess.PIPE, text=True)
    try:
        addr = ui.stdout.readline().strip().removeprefix("provdb ui: http://").rstrip("/")
        host, port = addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port))

        def get(path):
            conn.request("GET", path, headers={"Host": addr})
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (path, r.status, body[:200])
            return body

        def median_ms(action):
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                action()
                times.append((time.perf_counter() - t0) * 1000)
            return statistics.median(times)

        page = median_ms(lambda: [get(p) for p in ("/", "/app.js", "/app.css")])
        print(f"page assets (/, app.js, app.css): median {page:.2f} ms")
        print(f"{'form':<6}{'/api/query ms':>15}{'CLI ms':>10}  rows")
        for i, q in enumerate(FORMS, 1):
            path = "/api/query?q=" + urllib.parse.quote(q, safe="")
            api_body = get(path)
            cli_body = subprocess.run([provdb, "--db", archive, "query", "--format", "json", q],
                                      capture_output=True, check=True).stdout
            assert api_body == cli_body, f"form {i}: the API and the CLI differ"
            api = median_ms(lambda: get(path))
            cli = median_ms(lambda: subprocess.run(
                [provdb, "--db", archive, "query", "--format", "json", q],
                capture_output=True, check=True))
            rows = api_body.count(b"\n  {")
            print(f"{i:<6}{api:>15.2f}{cli:>10.2f}  {rows}")
    finally:
        ui.terminate()
        ui.wait()


if __name__ == "__main__":
    main()
