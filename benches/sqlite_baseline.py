#!/usr/bin/env python3
"""SQLite baseline of docs/peer-benchmarks.md, run by `cargo bench --bench query` beside
provdb on the same graph in the same run.

    sqlite_baseline.py load CSV_DIR DB            load vertices.csv and edges.csv, index, print
                                                  "load <seconds> <edges> <bytes>"
    sqlite_baseline.py query DB STARTS_FILE Qn    a fresh process: open read-only, ask Qn once
                                                  per start, in order, fetching the ids; then
                                                  once more (warm); print "times first <ms...>"
                                                  and "times warm <ms...>" and "rows <n>"

The schema is the peers' one: vertices(id, type), edges(id, type, src, dst), ids as text,
indexes on edges(src), edges(dst), edges(type). Queries (recursive CTEs, distinct ids):
Q1 count of `read` edges; Q2 ancestors within 3 hops; Q3 descendants within 5 hops; Q4 out
neighbours over read|write.
"""

import csv
import os
import sqlite3
import sys
import time

def reachable(start_column, next_column, hops):
    """Distinct vertices reached from ?1 over 1..hops edges: ancestors when following edges
    backwards (dst -> src), descendants forwards (src -> dst)."""
    return f"""WITH RECURSIVE reach(v, d) AS (
               SELECT {next_column}, 1 FROM edges WHERE {start_column} = ?1
               UNION
               SELECT e.{next_column}, r.d + 1 FROM edges e JOIN reach r ON e.{start_column} = r.v
               WHERE r.d < {hops})
           SELECT DISTINCT v FROM reach"""


# name -> (SQL, takes the start vertex)
QUERIES = {
    "Q1": ("SELECT count(*) FROM edges WHERE type = 'read'", False),
    "Q2": (reachable("dst", "src", 3), True),
    "Q3": (reachable("src", "dst", 5), True),
    "Q4": (
        "SELECT DISTINCT dst FROM edges WHERE src = ?1 AND type IN ('read', 'write')",
        True,
    ),
}


def load(csv_dir, db_path):
    if os.path.exists(db_path):
        os.remove(db_path)
    started = time.perf_counter()
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("CREATE TABLE vertices (id TEXT PRIMARY KEY, type TEXT)")
    con.execute("CREATE TABLE edges (id TEXT, type TEXT, src TEXT, dst TEXT)")
    with open(os.path.join(csv_dir, "vertices.csv"), newline="") as f:
        con.executemany("INSERT OR IGNORE INTO vertices VALUES (?, ?)", csv.reader(f))
    edges = 0
    with open(os.path.join(csv_dir, "edges.csv"), newline="") as f:
        rows = csv.reader(f)
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == 50000:
                con.executemany("INSERT INTO edges VALUES (?, ?, ?, ?)", batch)
                edges += len(batch)
                batch = []
        con.executemany("INSERT INTO edges VALUES (?, ?, ?, ?)", batch)
        edges += len(batch)
    con.execute("CREATE INDEX edges_src ON edges(src)")
    con.execute("CREATE INDEX edges_dst ON edges(dst)")
    con.execute("CREATE INDEX edges_type ON edges(type)")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    seconds = time.perf_counter() - started
    size = sum(
        os.path.getsize(p) for p in (db_path, db_path + "-wal") if os.path.exists(p)
    )
    print(f"load {seconds:.3f} {edges} {size}")


def query(db_path, starts_path, name):
    text, per_start = QUERIES[name]
    with open(starts_path) as f:
        starts = [line.strip() for line in f if line.strip()]
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    rows = 0
    for label in ("first", "warm"):
        times = []
        for start in starts:
            t = time.perf_counter()
            result = con.execute(text, (start,) if per_start else ()).fetchall()
            times.append((time.perf_counter() - t) * 1e3)
            if label == "first":
                rows += len(result)
        print(f"times {label} " + " ".join(f"{x:.6f}" for x in times))
    print(f"rows {rows}")
    con.close()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "query":
        query(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
