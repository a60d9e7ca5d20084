#!/usr/bin/env python3
"""Kuzu's load of the peer workload's CSV, the peer document's third bar for provdb's import.

    kuzu_baseline.py load CSV_DIR DB    load vertices.csv and edges.csv (as written by
                                        benches/query.rs) into a new Kuzu database with COPY,
                                        print "load <seconds> <edges> <bytes>"

Kuzu's COPY takes a relationship's endpoints as its first two columns: the edges are written
again in that order (src, dst, id, type) before the timer starts, as the peer document's
pre-parsed CSV was. Needs `pip install kuzu` (0.11.3 in the peer document).
"""
import csv
import os
import shutil
import sys
import time

import kuzu


def size_of(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(path)
        for f in files
    )


def load(csv_dir, db_path):
    for p in (db_path, db_path + ".wal"):
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    vertices = os.path.join(csv_dir, "vertices.csv")
    edges = os.path.join(csv_dir, "edges-kuzu.csv")
    count = 0
    with open(os.path.join(csv_dir, "edges.csv"), newline="") as src, open(
        edges, "w", newline=""
    ) as dst:
        out = csv.writer(dst)
        for edge_id, edge_type, s, d in csv.reader(src):
            out.writerow((s, d, edge_id, edge_type))
            count += 1
    started = time.perf_counter()
    db = kuzu.Database(db_path)
    con = kuzu.Connection(db)
    con.execute("CREATE NODE TABLE Vertex(id STRING, type STRING, PRIMARY KEY (id))")
    con.execute("CREATE REL TABLE Edge(FROM Vertex TO Vertex, id STRING, type STRING)")
    con.execute(f"COPY Vertex FROM '{vertices}' (HEADER=false)")
    con.execute(f"COPY Edge FROM '{edges}' (HEADER=false)")
    con.close()
    db.close()
    seconds = time.perf_counter() - started
    os.remove(edges)
    print(f"load {seconds:.3f} {count} {size_of(db_path)}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
