"""The engine's job done by PySpark in local mode (the stand-in for an AWS Glue job):
`python peer_spark.py <csv> <outdir> <threads>`.

Spark runs `local[N]` in one JVM with driver memory sized for the file; all work is DataFrame
expressions (no Python UDFs, no collect of the data to Python):

1. Physical lines. `spark.read.text` with `lineSep="\\n"` gives one row per physical line. Spark
   keeps the raw bytes, so `is_valid_utf8` tells the lines that are not UTF-8. Lines are numbered
   in file order (header = 1): the position inside each input split (`monotonically_increasing_id`)
   plus the number of lines in the splits before it (`_metadata.file_block_start` orders them);
   the lines are cached, so the file is read once.
2. Records. As in the engine: a line with an even number of `"` is a record on its own; the few
   lines with an odd number are paired (opener with the next odd line, a window over that small
   set) and checked under the strict RFC 4180 rules (`common.RE_OPEN`/`RE_MID`/`RE_CLOSE`); a
   valid pair is one record, otherwise only its first line is rejected and the next line starts
   afresh.
3. Fields. `split` for records without `"`; `regexp_extract_all` plus unquoting for the others,
   after `RE_COMPLETE` checked the strict grammar.
4. Rules, first failure wins, in the engine's order; DECIMAL(18,4) via `try_cast`, never floats.
5. Dedup on (order_id, product_id) with a window ordered by line: the first row is kept; later
   ones with the same `xxhash64` of the normalised values are exact duplicates, others conflicts.
6. Snappy Parquet: orders (partitionBy pa_date), fact_orders, dim_clients, dim_products,
   dim_status, dim_channels, quarantine; plus the per-client/product/status aggregates.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyspark import StorageLevel  # noqa: E402
from pyspark.sql import SparkSession, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from common import (  # noqa: E402
    CHANNELS,
    INGESTED_AT,
    MAX_DECIMAL,
    PA_DATE,
    RE_CLOSE,
    RE_COMPLETE,
    RE_DECIMAL,
    RE_DECIMAL_TOO_LONG,
    RE_INT,
    RE_MID,
    RE_OPEN,
    RE_SPLIT,
    STATUSES,
    Phases,
    emit,
    memory_budget_gib,
    parse_header,
    source_uri,
    usage,
)

col = F.col
lit = F.lit


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "peer_spark.py")
    index, field_count = parse_header(csv)
    ph = Phases()
    # Local mode only talks to itself: keep the driver on the loopback interface.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (
        SparkSession.builder.master(f"local[{threads}]")
        .appName("duff-compare")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", f"{memory_budget_gib(csv)}g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", str(4 * threads))
        .config("spark.sql.parquet.compression.codec", "snappy")
        .config("spark.local.dir", os.path.join(outdir, "_spark_tmp"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    ph.mark("spark_start")

    # 1. Physical lines ---------------------------------------------------------------------------
    raw = spark.read.option("lineSep", "\n").text(csv).select(
        col("value").alias("line"),
        col("_metadata.file_block_start").alias("block"),
        F.spark_partition_id().alias("pid"),
        F.monotonically_increasing_id().alias("mid"),
    )
    # Lines per input split, in file order → the first line number of each split. (A first,
    # light pass over the file; the split planning, and so pid/mid, is the same in both passes.)
    blocks = raw.groupBy("pid", "block").count().orderBy("block").collect()
    first, offsets = 1, []
    for b in blocks:
        offsets.append((b["pid"], first))
        first += b["count"]
    offset_df = spark.createDataFrame(offsets, "pid int, first long")
    cr = F.endswith(col("line"), lit("\r"))
    lines = (
        raw.join(F.broadcast(offset_df), "pid")
        .select(
            (col("mid") - F.shiftleft(col("pid").cast("long"), 33) + col("first")).alias("ln"),
            col("line"),
        )
        .where(col("ln") > 1)
        .select(
            "ln",
            # The record's last line loses its CR, like the engine; `cr` keeps it for lines
            # inside a quoted field.
            F.when(cr, F.expr("substring(line, 1, length(line) - 1)")).otherwise(col("line")).alias("body"),
            cr.alias("cr"),
            (~F.is_valid_utf8("line")).alias("bad_utf8"),
            (F.length("line") - F.length(F.replace("line", lit('"'), lit("")))).alias("nq"),
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    lines.count()
    ph.mark("read_lines")

    # 2. Records ----------------------------------------------------------------------------------
    by_ln = Window.orderBy("ln")
    odd = (
        lines.where(col("nq") % 2 == 1)
        .select(
            "ln",
            col("body").rlike(RE_OPEN).alias("opens"),
            col("body").rlike(RE_CLOSE).alias("closes"),
        )
        .withColumn("k", F.row_number().over(by_ln))
        .withColumn("nxt", F.lead("ln").over(by_ln))
        .withColumn("next_closes", F.coalesce(F.lead("closes").over(by_ln), lit(False)))
        .persist()
    )
    gaps = (
        odd.where(col("opens") & col("next_closes") & (col("nxt") > col("ln") + 1))
        .select("k", F.explode(F.sequence(col("ln") + 1, col("nxt") - 1)).alias("mid"))
        .join(lines.select(col("ln").alias("mid"), "body"), "mid")
        .where(~col("body").rlike(RE_MID))
        .select("k")
        .distinct()
        .withColumn("bad_gap", lit(True))
    )
    pairs = (
        odd.join(gaps, "k", "left")
        .withColumn("ok", col("opens") & col("next_closes") & col("bad_gap").isNull())
        .withColumn(
            "last_bad",
            F.coalesce(
                F.max(F.when(~col("ok"), col("k"))).over(
                    Window.orderBy("k").rowsBetween(Window.unboundedPreceding, 0)
                ),
                lit(0),
            ),
        )
        .where(col("ok") & ((col("k") - col("last_bad") - 1) % 2 == 0))
        .select("ln", "nxt")
    )
    members = (
        pairs.select(
            col("ln").alias("start"), F.explode(F.sequence("ln", "nxt")).alias("member")
        )
        .join(lines.select(col("ln").alias("member"), "body", "cr", "bad_utf8"), "member")
        .withColumn("line", F.when(col("cr"), F.concat("body", lit("\r"))).otherwise(col("body")))
        .persist()
    )
    # The last line of a record loses its CR; the others keep theirs inside the field.
    joined = members.groupBy("start").agg(
        F.array_sort(
            F.collect_list(F.struct("member", "line", "body"))
        ).alias("parts"),
        F.bool_or("bad_utf8").alias("joined_bad_utf8"),
    ).select(
        col("start").alias("ln"),
        F.concat(
            F.array_join(F.transform(F.slice("parts", 1, F.size("parts") - 1), lambda p: p["line"]), "\n"),
            lit("\n"),
            F.element_at("parts", -1)["body"],
        ).alias("joined_rec"),
        "joined_bad_utf8",
    )
    covered = members.where(col("member") != col("start")).select(col("member").alias("ln"))

    quoting = (
        F.when(col("joined_rec").isNotNull() | (col("nq") == 0), lit("ok"))
        .when(
            col("nq") % 2 == 1,
            F.when(col("body").rlike(RE_OPEN), lit("unterminated_quote")).otherwise(
                lit("bad_quoting")
            ),
        )
        .when(col("body").rlike(RE_COMPLETE), lit("ok"))
        .otherwise(lit("bad_quoting"))
    )
    starts = (
        lines.join(F.broadcast(covered), "ln", "left_anti")
        .join(F.broadcast(joined), "ln", "left")
        .where(col("joined_rec").isNotNull() | (col("body") != ""))
        .select(
            "ln",
            F.coalesce("joined_rec", "body").alias("rec"),
            F.coalesce("joined_bad_utf8", "bad_utf8").alias("bad_utf8"),
            quoting.alias("quoting"),
            (col("nq") > 0).alias("quoted"),
        )
    )

    # 3. Fields -----------------------------------------------------------------------------------
    unquote = lambda f: F.when(  # noqa: E731
        f.startswith('"'),
        F.replace(F.substring(f, 2, F.length(f) - 2), lit('""'), lit('"')),
    ).otherwise(f)
    fs = F.when(col("quoting") != "ok", lit(None)).when(
        ~col("quoted"), F.split("rec", ",", -1)
    ).otherwise(
        F.transform(F.regexp_extract_all(F.concat("rec", lit(",")), lit(RE_SPLIT), 1), unquote)
    )

    # 4. Rules ------------------------------------------------------------------------------------
    def fld(name: str):
        v = F.try_element_at(col("fs"), lit(index[name] + 1))
        return F.btrim(F.coalesce(v, lit("")), lit(" \t"))

    def int_val(s):
        v = s.try_cast("bigint")
        return F.when(s.rlike(RE_INT) & (v > 0), v)

    def dec_val(s):
        ok = s.rlike(RE_DECIMAL) & ~s.rlike(RE_DECIMAL_TOO_LONG)
        return F.when(ok, s.try_cast("decimal(18,4)"))

    channel = F.lower(col("channel_s"))
    status = F.lower(col("status_s"))
    channel_expr = F.when(lit(False), lit(None))
    for _, n in CHANNELS:
        channel_expr = channel_expr.when(channel == n.lower(), lit(n))
    status_expr = F.when(lit(False), lit(None))
    for _, n in STATUSES:
        status_expr = status_expr.when(status == n, lit(n))
    vals = starts.select("ln", "rec", "bad_utf8", "quoting", fs.alias("fs")).select(
        "ln",
        "rec",
        "bad_utf8",
        "quoting",
        F.size("fs").alias("nf"),
        fld("client_id").alias("client_id_s"),
        fld("client_name").alias("client_name"),
        fld("order_id").alias("order_id_s"),
        fld("product_id").alias("product_id_s"),
        fld("product_description").alias("product_description"),
        fld("product_price").alias("price_s"),
        fld("product_ccf").alias("ccf_s"),
        fld("product_volume").alias("volume_s"),
        fld("point_of_sale_channel").alias("channel_s"),
        fld("status").alias("status_s"),
    )
    typed = vals.select(
        "ln",
        "rec",
        "bad_utf8",
        "quoting",
        "nf",
        int_val(col("client_id_s")).alias("client_id"),
        "client_name",
        int_val(col("order_id_s")).alias("order_id"),
        int_val(col("product_id_s")).alias("product_id"),
        "product_description",
        dec_val(col("price_s")).alias("product_price"),
        int_val(col("ccf_s")).alias("product_ccf"),
        dec_val(col("volume_s")).alias("product_volume"),
        channel_expr.alias("point_of_sale_channel"),
        status_expr.alias("status"),
    )
    units = col("product_ccf").cast("decimal(18,0)")
    wide_price = col("product_price") * units
    wide_volume = col("product_volume") * units
    max_dec = lit(MAX_DECIMAL).cast("decimal(18,4)")
    reason = (
        F.when(col("quoting") != "ok", col("quoting"))
        .when(col("nf") != field_count, lit("field_count"))
        .when(col("bad_utf8"), lit("invalid_utf8"))
        .when(col("client_id").isNull(), lit("invalid_client_id"))
        .when(col("client_name") == "", lit("empty_client_name"))
        .when(col("order_id").isNull(), lit("invalid_order_id"))
        .when(col("product_id").isNull(), lit("invalid_product_id"))
        .when(col("product_description") == "", lit("empty_product_description"))
        .when(col("product_price").isNull(), lit("invalid_product_price"))
        .when(col("product_ccf").isNull(), lit("invalid_product_ccf"))
        .when(
            col("product_volume").isNull() | (col("product_volume") == 0),
            lit("invalid_product_volume"),
        )
        .when(col("point_of_sale_channel").isNull(), lit("unknown_channel"))
        .when(col("status").isNull(), lit("unknown_status"))
        .when((wide_price > max_dec) | (wide_volume > max_dec), lit("total_overflow"))
    )
    checked = (
        typed.withColumn("reason", reason)
        .withColumn("total_price", F.when(col("reason").isNull(), wide_price.cast("decimal(18,4)")))
        .withColumn("total_volume", F.when(col("reason").isNull(), wide_volume.cast("decimal(18,4)")))
        .withColumn("raw_text", F.when(col("reason").isNotNull(), col("rec")))
        .drop("rec", "quoting", "nf", "bad_utf8")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    blank_lines = (
        lines.where(col("body") == "").join(F.broadcast(covered), "ln", "left_anti").count()
    )
    rows_read = checked.count()
    ph.mark("parse_validate")

    # 5. Dedup ------------------------------------------------------------------------------------
    w = Window.partitionBy("order_id", "product_id").orderBy("ln")
    fp = F.xxhash64(
        "client_id", "client_name", "product_description", "product_price", "product_ccf",
        "product_volume", "point_of_sale_channel", "status",
    )
    judged = (
        checked.where(col("reason").isNull())
        .withColumn("fp", fp)
        .withColumn("kept_line", F.first("ln").over(w))
        .withColumn("first_fp", F.first("fp").over(w))
        .withColumn(
            "verdict",
            F.when(col("ln") == col("kept_line"), lit("kept"))
            .when(col("fp") == col("first_fp"), lit("duplicate"))
            .otherwise(lit("key_conflict")),
        )
        .drop("fp", "first_fp")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    judged.count()
    kept = judged.where(col("verdict") == "kept")
    ph.mark("dedup")

    # 6. Parquet ----------------------------------------------------------------------------------
    src = source_uri(csv)
    ingested = F.to_timestamp(lit(INGESTED_AT))
    lineage = [
        lit(src).alias("source_file"),
        col("ln").alias("source_line"),
        ingested.alias("ingested_at"),
        lit("spark").alias("run_id"),
    ]

    def write(df, table: str, partitioned: bool = True) -> None:
        path = os.path.join(outdir, table)
        if partitioned:
            df.withColumn("pa_date", lit(PA_DATE)).write.mode("overwrite").partitionBy(
                "pa_date"
            ).parquet(path)
        else:
            df.coalesce(1).write.mode("overwrite").parquet(path)

    # Sorted once (file order, like the engine's output) for both orders and fact_orders.
    kept_sorted = kept.orderBy("ln").persist(StorageLevel.MEMORY_AND_DISK)
    write(
        kept_sorted.select(
            "client_id", "client_name", "order_id", "product_id", "product_description",
            "product_price", "product_ccf", "product_volume", "point_of_sale_channel", "status",
            "total_price", "total_volume", *lineage,
        ),
        "orders",
    )
    status_id = F.when(lit(False), lit(None))
    for i, n in STATUSES:
        status_id = status_id.when(col("status") == n, lit(i))
    channel_id = F.when(lit(False), lit(None))
    for i, n in CHANNELS:
        channel_id = channel_id.when(col("point_of_sale_channel") == n, lit(i))
    write(
        kept_sorted.select(
            "order_id", "product_id", "client_id", status_id.cast("int").alias("status_id"),
            channel_id.cast("int").alias("channel_id"), col("product_ccf").alias("units"),
            col("product_price").alias("unit_price"), "total_price", "total_volume", *lineage,
        ),
        "model/fact_orders",
    )
    write(
        kept.groupBy("client_id")
        .agg(F.max_by("client_name", "ln").alias("client_name"))
        .orderBy("client_id")
        .select("*", ingested.alias("ingested_at"), lit("spark").alias("run_id")),
        "model/dim_clients",
    )
    write(
        kept.groupBy("product_id")
        .agg(
            F.max_by("product_description", "ln").alias("product_description"),
            F.max_by("product_price", "ln").alias("product_price"),
            F.max_by("product_volume", "ln").alias("product_volume"),
        )
        .orderBy("product_id")
        .select("*", ingested.alias("ingested_at"), lit("spark").alias("run_id")),
        "model/dim_products",
    )
    write(spark.createDataFrame(STATUSES, "status_id int, status string"), "model/dim_status")
    write(spark.createDataFrame(CHANNELS, "channel_id int, channel string"), "model/dim_channels")
    conflicts = judged.where(col("verdict") == "key_conflict").select("ln", "kept_line")
    rejected = (
        checked.where(col("reason").isNotNull())
        .select("ln", "reason", "raw_text", lit(None).cast("long").alias("kept_line"))
        .unionByName(
            conflicts.join(lines.select("ln", "body"), "ln")
            .join(F.broadcast(joined), "ln", "left")
            .select(
                "ln",
                lit("key_conflict").alias("reason"),
                F.coalesce("joined_rec", "body").alias("raw_text"),
                "kept_line",
            )
        )
        .persist()
    )
    write(
        rejected.orderBy("ln").select(
            lit(src).alias("source_file"), col("ln").alias("source_line"), "reason", "raw_text",
            "kept_line", ingested.alias("ingested_at"), lit("spark").alias("run_id"),
        ),
        "quarantine",
    )
    ph.mark("write")

    # Aggregates (part of the job) ------------------------------------------------------------------
    for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
        write(
            kept.groupBy(key)
            .agg(
                F.count(lit(1)).alias("orders"),
                F.sum("product_ccf").alias("units"),
                F.sum("total_price").alias("total_price"),
            )
            .orderBy(key),
            f"aggregates/{name}",
            partitioned=False,
        )
    ph.mark("aggregates")

    by_reason = {r["reason"]: r["count"] for r in rejected.groupBy("reason").count().collect()}
    verdicts = {r["verdict"]: r["count"] for r in judged.groupBy("verdict").count().collect()}
    by_status = {r["status"]: r["count"] for r in kept.groupBy("status").count().collect()}
    sums = kept.agg(F.sum("total_price"), F.sum("total_volume")).collect()[0]
    emit(
        rows_read=rows_read,
        kept=verdicts.get("kept", 0),
        exact_duplicates=verdicts.get("duplicate", 0),
        rejected=sum(by_reason.values()),
        sum_total_price=sums[0],
        sum_total_volume=sums[1],
        by_status=by_status,
        by_reason=by_reason,
        blank_lines=blank_lines,
        phases=ph,
    )
    spark.stop()


if __name__ == "__main__":
    main()
