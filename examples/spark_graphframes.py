"""Fleet-wide analytics on a provdb Parquet export with Spark (and GraphFrames when present).

    provdb --db /data/node-1 export --format parquet --out /exports/node-1
    provdb --db /data/node-2 export --format parquet --out /exports/node-2
    pip install pyspark graphframes-py
    spark-submit --packages graphframes:graphframes:0.8.4-spark3.5-s_2.12 \
        examples/spark_graphframes.py /exports/node-1 /exports/node-2

Each export holds vertices/ and edges/, hive-partitioned by machine (machine=<id>/), with
the columns GraphFrames expects (vertices: id; edges: src, dst). The graphframes jar comes from
spark-packages at run time (--packages); the graphframes-py wheel ships only the Python side.
Without it the Spark SQL part still runs (plain `python3 examples/spark_graphframes.py ...`
with pyspark installed) and the GraphFrames part says it was skipped.

`--json` prints what the Spark SQL part computed as one JSON object instead of tables (the
test suite compares it with provdb's own answers).
"""

import json
import sys
from functools import reduce

from pyspark.sql import SparkSession, functions as F


def read_all(spark, exports, dataset):
    # Each export is its own hive-partitioned table (machine=<id>/): Spark refuses to read
    # several roots as one, so read each and union them.
    frames = [spark.read.parquet(e + "/" + dataset) for e in exports]
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def load(spark, exports):
    vertices = read_all(spark, exports, "vertices")
    edges = read_all(spark, exports, "edges")
    # Stub vertices (class 'unknown') of one node may be defined on another: keep one row per
    # id, preferring a defined one.
    vertices = (
        vertices.withColumn("stub", F.col("class") == "unknown")
        .orderBy("stub")
        .dropDuplicates(["id"])
        .drop("stub")
    )
    return vertices, edges


def write_read_flows(vertices, edges):
    """Processes (task) that wrote an object which another process then read: two-hop flows,
    as plain joins (the same question as the GraphFrames motif below)."""
    tasks = vertices.where("type = 'task'").select("id")
    w = edges.where("type = 'write'").select(F.col("src").alias("p"), F.col("dst").alias("f"))
    r = edges.where("type = 'read'").select(F.col("src").alias("f"), F.col("dst").alias("q"))
    return (
        w.join(r, "f")
        .join(tasks.withColumnRenamed("id", "p"), "p")
        .join(tasks.withColumnRenamed("id", "q"), "q")
        .where("p != q")
        .select("p", "f", "q")
        .distinct()
    )


def graphframes_part(vertices, edges):
    try:
        from graphframes import GraphFrame

        g = GraphFrame(vertices, edges)
        print("vertices", g.vertices.count(), "edges", g.edges.count())
    except Exception as e:  # the Python package without its jar fails at first use
        print(f"SKIPPED: GraphFrames unavailable ({type(e).__name__}: {e})".splitlines()[0])
        return
    flows = g.find("(p)-[w]->(f); (f)-[r]->(q)").where(
        "p.type = 'task' AND w.type = 'write' AND r.type = 'read' AND q.type = 'task' AND p.id != q.id"
    )
    flows.select("p.id", "f.id", "q.id").show(10, truncate=False)
    # In-degree as an influence score of files across the fleet.
    g.inDegrees.join(vertices, "id").where("type = 'file'").orderBy(F.desc("inDegree")).show(10)


def main(args):
    as_json = "--json" in args
    exports = [a for a in args if a != "--json"]
    spark = SparkSession.builder.appName("provdb-fleet").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    vertices, edges = load(spark, exports)
    flows = write_read_flows(vertices, edges)
    if as_json:
        by = lambda df, col: {str(r[col]): r["count"] for r in df.groupBy(col).count().collect()}
        print(
            json.dumps(
                {
                    "vertices": vertices.count(),
                    "edges": edges.count(),
                    "edges_per_machine": by(edges, "machine"),
                    "edges_per_type": by(edges, "type"),
                    "vertices_per_type": by(vertices, "type"),
                    "write_read_flows": sorted([r["p"], r["f"], r["q"]] for r in flows.collect()),
                }
            )
        )
    else:
        # Plain Spark SQL: the busiest machines and edge types of the fleet.
        edges.groupBy("machine").count().orderBy(F.desc("count")).show(10)
        edges.groupBy("type").count().orderBy(F.desc("count")).show(20)
        print("write -> read flows between processes:", flows.count())
        flows.show(10, truncate=False)
        graphframes_part(vertices, edges)
    spark.stop()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: spark_graphframes.py [--json] EXPORT_DIR...")
    main(sys.argv[1:])
