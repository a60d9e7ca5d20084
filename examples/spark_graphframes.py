"""Fleet-wide analytics on a provdb Parquet export with Spark and GraphFrames.

    provdb --db /data/node-1 export --format parquet --out /exports/node-1
    provdb --db /data/node-2 export --format parquet --out /exports/node-2
    pip install pyspark graphframes-py
    spark-submit --packages graphframes:graphframes:0.8.4-spark3.5-s_2.12 \
        examples/spark_graphframes.py /exports/node-1 /exports/node-2

Each export holds vertices/ and edges/, hive-partitioned by machine (machine=<id>/), with
the columns GraphFrames expects (vertices: id; edges: src, dst). The graphframes jar comes from
spark-packages at run time (--packages); the graphframes-py wheel ships only the Python side.
"""

import sys

from pyspark.sql import SparkSession, functions as F


def main(exports):
    spark = SparkSession.builder.appName("provdb-fleet").getOrCreate()
    vertices = spark.read.parquet(*[e + "/vertices" for e in exports])
    edges = spark.read.parquet(*[e + "/edges" for e in exports])

    # Plain Spark SQL: the busiest machines and edge types of the fleet.
    edges.groupBy("machine").count().orderBy(F.desc("count")).show(10)
    edges.groupBy("type").count().orderBy(F.desc("count")).show(20)

    from graphframes import GraphFrame

    # Stub vertices (class 'unknown') of one node may be defined on another: keep one row per
    # id, preferring a defined one.
    vertices = (
        vertices.withColumn("stub", F.col("class") == "unknown")
        .orderBy("stub")
        .dropDuplicates(["id"])
    )
    g = GraphFrame(vertices, edges)
    print("vertices", g.vertices.count(), "edges", g.edges.count())
    # Processes (task) that wrote a file which another process then read: a two-hop flow.
    flows = g.find("(p)-[w]->(f); (f)-[r]->(q)").where(
        "p.type = 'task' AND w.type = 'write' AND r.type = 'read' AND q.type = 'task' AND p.id != q.id"
    )
    flows.select("p.id", "f.id", "q.id").show(10, truncate=False)
    # In-degree as an influence score of files across the fleet.
    g.inDegrees.join(vertices, "id").where("type = 'file'").orderBy(F.desc("inDegree")).show(10)
    spark.stop()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: spark_graphframes.py EXPORT_DIR...")
    main(sys.argv[1:])
