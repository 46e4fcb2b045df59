"""The orders job as a PySpark (Glue) user writes it in an afternoon:
`python idiomatic_spark.py <csv> <outdir> <threads>`.

Spark's CSV reader with a schema in PERMISSIVE mode (a row that does not fit the schema lands in
`_corrupt_record`), those rows and rows with a null dropped, exact duplicates removed with
`dropDuplicates`, totals as DECIMAL(18,4), Parquet partitioned by pa_date, a small star schema
with broadcast joins and three aggregates. The cleaned rows are cached because every output reads
them. Its rules are Spark's, not the engine's, so its counts differ from the engine's (see
README.md, "Two tracks").
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyspark.sql import Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from common import PA_DATE, Phases, emit_idiomatic, parse_header, usage  # noqa: E402
from peer_spark import session  # noqa: E402

TYPES = {
    "client_id": "bigint",
    "client_name": "string",
    "order_id": "bigint",
    "product_id": "bigint",
    "product_description": "string",
    "product_price": "decimal(18,4)",
    "product_ccf": "bigint",
    "product_volume": "decimal(18,4)",
    "point_of_sale_channel": "string",
    "status": "string",
}
col = F.col


def schema_of(csv: str) -> str:
    """The file's columns in header order, typed; columns the job does not use stay strings."""
    index, field_count = parse_header(csv)
    names = [f"extra_{i}" for i in range(field_count)]
    for name, at in index.items():
        names[at] = name
    fields = [f"`{n}` {TYPES.get(n, 'string')}" for n in names]
    return ", ".join(fields + ["_corrupt_record string"])


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "idiomatic_spark.py")
    ph = Phases()
    spark = session(csv, outdir, threads, app="duff-compare-idiomatic")
    ph.mark("spark_start")

    loaded = (
        spark.read.option("header", True)
        .option("escape", '"')
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .schema(schema_of(csv))
        .csv(csv)
        .cache()
    )
    # A total that does not fit DECIMAL(18,4) is as malformed as a value that does not parse.
    complete = (
        loaded.where(col("_corrupt_record").isNull())
        .select(
            *TYPES,
            (col("product_price") * col("product_ccf")).try_cast("decimal(18,4)").alias("total_price"),
            (col("product_volume") * col("product_ccf")).try_cast("decimal(18,4)").alias("total_volume"),
        )
        .dropna()
    )
    orders = complete.dropDuplicates().withColumn("pa_date", F.lit(PA_DATE)).cache()
    kept = orders.count()
    ph.mark("load_dedup")

    def write(df, path: str, partitioned: bool = False) -> None:
        writer = df.write.mode("overwrite")
        if partitioned:
            writer = writer.partitionBy("pa_date")
        writer.parquet(os.path.join(outdir, path))

    def numbered(name: str, key: str):
        """A small dimension: the distinct values of `key`, numbered in order."""
        values = orders.select(col(key).alias(name)).distinct()
        return values.withColumn(f"{name}_id", F.row_number().over(Window.orderBy(name))).cache()

    write(orders, "orders", partitioned=True)
    dim_status = numbered("status", "status")
    dim_channels = numbered("channel", "point_of_sale_channel")
    fact = (
        orders.join(F.broadcast(dim_status), "status")
        .join(F.broadcast(dim_channels), col("point_of_sale_channel") == col("channel"))
        .select(
            "order_id", "product_id", "client_id", "status_id", "channel_id",
            col("product_ccf").alias("units"), col("product_price").alias("unit_price"),
            "total_price", "total_volume", "pa_date",
        )
    )
    write(fact, "model/fact_orders", partitioned=True)
    write(orders.groupBy("client_id").agg(F.first("client_name").alias("client_name")), "model/dim_clients")
    write(
        orders.groupBy("product_id").agg(
            *(F.first(c).alias(c) for c in ("product_description", "product_price", "product_volume"))
        ),
        "model/dim_products",
    )
    write(dim_status.coalesce(1), "model/dim_status")
    write(dim_channels.coalesce(1), "model/dim_channels")
    ph.mark("write")

    for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
        write(
            orders.groupBy(key).agg(
                F.count(F.lit(1)).alias("orders"),
                F.sum("product_ccf").alias("units"),
                F.sum("total_price").alias("total_price"),
            ).coalesce(1),
            f"aggregates/{name}",
        )
    ph.mark("aggregates")

    # The counts come from the cached frames: no second pass over the file.
    read, complete_n = loaded.count(), complete.count()
    totals = orders.agg(F.sum("total_price"), F.sum("total_volume")).first()
    emit_idiomatic(
        rows_read=read,
        kept=kept,
        rejected=read - complete_n,
        duplicates_removed=complete_n - kept,
        sum_total_price=totals[0],
        sum_total_volume=totals[1],
        by_status={r["status"]: r["count"] for r in orders.groupBy("status").count().collect()},
        phases=ph,
    )
    spark.stop()


if __name__ == "__main__":
    main()
