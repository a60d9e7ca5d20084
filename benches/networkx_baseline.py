#!/usr/bin/env python3
"""networkx baseline of docs/peer-benchmarks.md (the in-memory peer), run by
`cargo bench --bench query` beside provdb and SQLite on the same graph in the same run.

    networkx_baseline.py CSV_DIR STARTS_FILE   load vertices.csv and edges.csv into a
                                               MultiDiGraph (edge type as an attribute), print
                                               "load <seconds> <edges>", then for each of Q1-Q4
                                               "query Qn", "times first <ms...>",
                                               "times warm <ms...>" and "rows <n>"

Each question is asked once per start, in order, then once more; in memory both passes are
warm. Q1 (a scan of every edge, ~0.4 s) is asked for the first three starts only. The answers are the ones of sqlite_baseline.py: distinct vertices within 1..3 hops into
the start (Q2), within 1..5 hops out of it (Q3), distinct out-neighbours over read|write (Q4);
Q1 counts the `read` edges.
"""

import csv
import os
import sys
import time

import networkx as nx


def reach(neighbours, start, hops):
    """Distinct vertices reached from `start` over 1..hops edges (the start itself only when
    a cycle leads back to it), as the recursive CTE of sqlite_baseline.py answers."""
    seen = set()
    frontier = [start]
    for _ in range(hops):
        following = []
        for u in frontier:
            for w in neighbours(u):
                if w not in seen:
                    seen.add(w)
                    following.append(w)
        frontier = following
    return list(seen)


def questions(graph):
    return {
        "Q1": (lambda _v: sum(1 for _, _, t in graph.edges(data="type") if t == "read"), False),
        "Q2": (lambda v: reach(graph.predecessors, v, 3), True),
        "Q3": (lambda v: reach(graph.successors, v, 5), True),
        "Q4": (
            lambda v: list(
                {w for _, w, t in graph.out_edges(v, data="type") if t in ("read", "write")}
            ),
            True,
        ),
    }


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    csv_dir, starts_path = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    graph = nx.MultiDiGraph()
    with open(os.path.join(csv_dir, "vertices.csv"), newline="") as f:
        graph.add_nodes_from(row[0] for row in csv.reader(f))
    edges = 0
    with open(os.path.join(csv_dir, "edges.csv"), newline="") as f:
        for _id, kind, src, dst in csv.reader(f):
            graph.add_edge(src, dst, type=kind)
            edges += 1
    print(f"load {time.perf_counter() - started:.3f} {edges}", flush=True)
    with open(starts_path) as f:
        starts = [line.strip() for line in f if line.strip()]
    for name, (ask, per_start) in questions(graph).items():
        print(f"query {name}")
        rows = 0
        for label in ("first", "warm"):
            times = []
            for start in starts if per_start else starts[:3]:
                t = time.perf_counter()
                result = ask(start if per_start else None)
                times.append((time.perf_counter() - t) * 1e3)
                if label == "first":
                    # A list counts its ids; a count (Q1) is one row per ask, as in sqlite_baseline.py.
                    rows += len(result) if isinstance(result, list) else 1
            print(f"times {label} " + " ".join(f"{x:.6f}" for x in times))
        print(f"rows {rows}", flush=True)


if __name__ == "__main__":
    main()
