"""The engine's job done by PySpark in local mode (the stand-in for an AWS Glue job):
`python peer_spark.py <csv> <outdir> <threads>`.

Spark runs `local[N]` in one JVM with a driver heap sized for the file; all work is DataFrame
expressions (no Python UDFs, no rows brought to Python):

1. Lines. `spark.read.text` with `lineSep="\\n"` gives one row per physical line with its raw
   bytes, so `is_valid_utf8` finds the lines that are not UTF-8. The lines are cached: the file
   is read once, and the cache serves the line count of each input split (which turns a line's
   position in its split into its line number, as `zipWithIndex` does), the odd lines, the parse,
   and the text of the few quarantined lines.
2. Multi-line records. Only the ~3% of lines with an odd number of `"` can start or end one: a
   window over those (one partition) pairs each with the next, and the strict RFC 4180 regexes of
   common.py decide whether the pair is one record or whether only its first line is rejected
   (the engine's recovery). The results are small and broadcast.
3. Parse and validate: every other line is a one-line record, `split` on commas, or, when it
   holds quotes and follows the strict grammar (`RE_COMPLETE`), split by `regexp_extract_all`
   and unquoted; every rule in the engine's order, DECIMAL(18,4) via `try_cast`. The typed rows
   are cached once; every later step reads them.
4. Dedup: `groupBy(order_id, product_id)` finds the few repeated keys; only their rows (a
   broadcast join) are ranked by line into the first occurrence, exact duplicates (same
   `xxhash64` of the normalised values) and key conflicts.
5. Snappy Parquet: orders (pa_date=…/), fact_orders, dim_clients, dim_products, dim_status,
   dim_channels, quarantine; then the per-client/product/status aggregates. Output row order is
   not part of the contract, so nothing is sorted.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyspark import StorageLevel  # noqa: E402
from pyspark.sql import DataFrame, SparkSession, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from common import (  # noqa: E402
    CHANNELS,
    INGESTED_AT,
    MAX_DECIMAL,
    PA_DATE,
    RE_CLOSE,
    RE_COMPLETE,
    RE_DECIMAL_18_4,
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
KEYS = ["order_id", "product_id"]


def session(csv: str, outdir: str, threads: int, app: str = "duff-compare") -> SparkSession:
    """A local Spark with the comparison's settings (shared with idiomatic_spark.py)."""
    # Local mode only talks to itself: keep the driver on the loopback interface.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    memory = os.environ.get("SPARK_DRIVER_MEMORY", f"{memory_budget_gib(csv)}g")
    spark = (
        SparkSession.builder.master(f"local[{threads}]")
        .appName(app)
        .config("spark.driver.memory", memory)
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
    return spark


def body(c: str = "line"):
    """A line without its CR: the record the engine reads from a one-line record."""
    return F.regexp_replace(col(c), "\r$", "")


class Lines:
    """The file's physical lines, read once and cached, numbered from 1 (the header)."""

    def __init__(self, spark: SparkSession, csv: str) -> None:
        self.raw = (
            spark.read.option("lineSep", "\n")
            .text(csv)
            .select(
                col("value").alias("line"),
                col("_metadata.file_block_start").alias("block"),
                F.spark_partition_id().alias("pid"),
                F.monotonically_increasing_id().alias("mid"),
            )
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        # The first line number of each input split: the lines of the splits before it, in
        # file order (a window over one row per split).
        counts = self.raw.groupBy("pid", "block").count()
        before = Window.orderBy("block").rowsBetween(Window.unboundedPreceding, -1)
        self.offsets = F.broadcast(
            counts.select("pid", (F.coalesce(F.sum("count").over(before), lit(0)) + 1).alias("first"))
        ).persist()
        self.offsets.count()

    def numbered(self) -> DataFrame:
        """`ln`, `line` (its raw text, CR kept), `bad_utf8` and `nq` (its number of quotes) of
        every line after the header."""
        return (
            self.raw.join(self.offsets, "pid")
            .select(
                (col("mid") - F.shiftleft(col("pid").cast("long"), 33) + col("first")).alias("ln"),
                "line",
            )
            .where(col("ln") > 1)
            .select(
                "ln",
                "line",
                (~F.is_valid_utf8("line")).alias("bad_utf8"),
                (F.length("line") - F.length(F.replace("line", lit('"'), lit("")))).alias("nq"),
            )
        )

    def unpersist(self) -> None:
        self.raw.unpersist()


def pairs_of(lines: DataFrame, odd_lines: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(`ln`, `nxt`), the first and last line of every multi-line record, and the lines between
    them (`ln`, `line`, `bad_utf8`)."""
    by_ln = Window.orderBy("ln")
    odd = (
        odd_lines.select(
            "ln",
            body().rlike(RE_OPEN).alias("opens"),
            body().rlike(RE_CLOSE).alias("closes"),
        )
        .withColumn("k", F.row_number().over(by_ln))
        .withColumn("nxt", F.lead("ln").over(by_ln))
        .withColumn("next_closes", F.coalesce(F.lead("closes").over(by_ln), lit(False)))
    )
    # Lines between an opener and its closer must stay inside the quoted field. They are rare
    # (a field holding two line ends or more).
    candidates = odd.where(col("opens") & col("next_closes"))
    between = candidates.where(col("nxt") > col("ln") + 1).select(
        F.explode(F.sequence(col("ln") + 1, col("nxt") - 1)).alias("ln")
    )
    gap = lines.join(F.broadcast(between), "ln", "left_semi").select("ln", "line", "bad_utf8")
    bad_gap = (
        candidates.join(
            F.broadcast(gap.select(col("ln").alias("mid"), col("line").alias("mid_line"))),
            (col("mid") > col("ln")) & (col("mid") < col("nxt")),
        )
        .where(~col("mid_line").rlike(RE_MID))
        .select("k")
        .distinct()
        .withColumn("bad_gap", lit(True))
    )
    upto = Window.orderBy("k").rowsBetween(Window.unboundedPreceding, 0)
    # A closer that also opens is taken by the pair before it: in a run of valid pairs sharing
    # lines, every other one from the run's start is a record.
    pairs = (
        odd.join(F.broadcast(bad_gap), "k", "left")
        .withColumn("ok", col("opens") & col("next_closes") & col("bad_gap").isNull())
        .withColumn("last_bad", F.coalesce(F.max(F.when(~col("ok"), col("k"))).over(upto), lit(0)))
        .where(col("ok") & ((col("k") - col("last_bad") - 1) % 2 == 0))
        .select("ln", "nxt")
    )
    return pairs, gap


def multi_line_records(odd_lines: DataFrame, gap: DataFrame, pairs: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The records that start on an odd line (`ln`, `rec`, `bad_utf8`, `quoting`) and the lines
    that multi-line records cover after their first (`ln`)."""
    members = pairs.select(col("ln").alias("start"), F.explode(F.sequence("ln", "nxt")).alias("ln"))
    covered = members.where(col("ln") != col("start")).select("ln")
    texts = odd_lines.select("ln", "line", "bad_utf8").unionByName(gap)
    parts = F.array_sort(F.collect_list(F.struct("ln", "line")))
    joined = (
        members.join(texts, "ln")
        .groupBy("start")
        .agg(parts.alias("parts"), F.bool_or("bad_utf8").alias("bad_utf8"))
        .select(
            col("start").alias("ln"),
            F.regexp_replace(F.array_join(F.transform("parts", lambda p: p["line"]), "\n"), "\r$", "").alias("rec"),
            "bad_utf8",
            lit("ok").alias("quoting"),
        )
    )
    alone = (
        odd_lines.join(F.broadcast(covered), "ln", "left_anti")
        .join(F.broadcast(pairs.select("ln")), "ln", "left_anti")
        .select(
            "ln",
            body().alias("rec"),
            "bad_utf8",
            F.when(body().rlike(RE_OPEN), lit("unterminated_quote")).otherwise(lit("bad_quoting")).alias("quoting"),
        )
    )
    return joined.unionByName(alone), covered


def validated(records: DataFrame, index: dict[str, int], field_count: int) -> DataFrame:
    """Types the fields of every record and names its first broken rule (`reason`).

    `records` has `ln`, `fs` (the record's fields, unquoted), `quoting` ('ok' or the quoting
    reason), `bad_utf8` and `raw` (its text, kept only for rejected records)."""

    def fld(name: str):
        v = F.try_element_at(col("fs"), lit(index[name] + 1))
        return F.btrim(F.coalesce(v, lit("")), lit(" \t"))

    def int_val(s):
        v = s.try_cast("bigint")
        return F.when(s.rlike(RE_INT) & (v > 0), v)

    def dec_val(s):
        return F.when(s.rlike(RE_DECIMAL_18_4), s.try_cast("decimal(18,4)"))

    def canonical(s, names):
        out = F.when(lit(False), lit(None))
        for n in names:
            out = out.when(s == n.lower(), lit(n))
        return out

    typed = records.select(
        "ln",
        "quoting",
        "bad_utf8",
        "raw",
        F.size("fs").alias("nf"),
        int_val(fld("client_id")).alias("client_id"),
        fld("client_name").alias("client_name"),
        int_val(fld("order_id")).alias("order_id"),
        int_val(fld("product_id")).alias("product_id"),
        fld("product_description").alias("product_description"),
        dec_val(fld("product_price")).alias("product_price"),
        int_val(fld("product_ccf")).alias("product_ccf"),
        dec_val(fld("product_volume")).alias("product_volume"),
        canonical(F.lower(fld("point_of_sale_channel")), [n for _, n in CHANNELS]).alias("point_of_sale_channel"),
        canonical(F.lower(fld("status")), [n for _, n in STATUSES]).alias("status"),
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
        .when(col("product_volume").isNull() | (col("product_volume") == 0), lit("invalid_product_volume"))
        .when(col("point_of_sale_channel").isNull(), lit("unknown_channel"))
        .when(col("status").isNull(), lit("unknown_status"))
        .when((wide_price > max_dec) | (wide_volume > max_dec), lit("total_overflow"))
    )
    return (
        typed.withColumn("reason", reason)
        .withColumn("total_price", F.when(col("reason").isNull(), wide_price.cast("decimal(18,4)")))
        .withColumn("total_volume", F.when(col("reason").isNull(), wide_volume.cast("decimal(18,4)")))
        .withColumn("raw", F.when(col("reason").isNotNull(), col("raw")))
        .drop("nf", "quoting", "bad_utf8")
    )


def quoted_fields(rec):
    """The fields of a record that follows the strict grammar: `RE_SPLIT` matches, unquoted."""

    def unquote(f):
        inner = F.replace(F.substring(f, 2, F.length(f) - 2), lit('""'), lit('"'))
        return F.when(f.startswith('"'), inner).otherwise(f)

    return F.transform(F.regexp_extract_all(F.concat(rec, lit(",")), lit(RE_SPLIT), 1), unquote)


def split_records(lines: DataFrame, covered: DataFrame, qrec: DataFrame) -> DataFrame:
    """Every record in the shape `validated` reads: the one-line records (lines with an even
    number of quotes, not blank, not inside a multi-line record) split on commas, or, if they
    hold quotes and follow the strict grammar, by `RE_SPLIT`; then the records that start on an
    odd line."""
    rec = body()
    complete = rec.rlike(RE_COMPLETE)
    one_line = (
        lines.where((col("nq") % 2 == 0) & (rec != ""))
        .join(F.broadcast(covered), "ln", "left_anti")
        .select(
            "ln",
            F.when(col("nq") == 0, F.split(rec, ",", -1)).when(complete, quoted_fields(rec)).alias("fs"),
            F.when((col("nq") == 0) | complete, lit("ok")).otherwise(lit("bad_quoting")).alias("quoting"),
            "bad_utf8",
            rec.alias("raw"),
        )
    )
    multi_line = qrec.select(
        "ln", F.when(col("quoting") == "ok", quoted_fields(col("rec"))).alias("fs"), "quoting", "bad_utf8", col("rec").alias("raw")
    )
    return one_line.unionByName(multi_line)


def judge_duplicates(valid: DataFrame) -> DataFrame:
    """(`ln`, `kept_line`, `verdict`) of every valid row that is not its key's first."""
    repeated = valid.groupBy(*KEYS).count().where(col("count") > 1).drop("count")
    w = Window.partitionBy(*KEYS).orderBy("ln")
    fp = F.xxhash64(
        "client_id", "client_name", "product_description", "product_price", "product_ccf",
        "product_volume", "point_of_sale_channel", "status",
    )
    return (
        valid.join(F.broadcast(repeated), KEYS, "left_semi")
        .select("ln", *KEYS, fp.alias("fp"))
        .withColumn("kept_line", F.first("ln").over(w))
        .withColumn("first_fp", F.first("fp").over(w))
        .where(col("ln") != col("kept_line"))
        .select(
            "ln",
            "kept_line",
            F.when(col("fp") == col("first_fp"), lit("duplicate")).otherwise(lit("key_conflict")).alias("verdict"),
        )
    )


def write(df: DataFrame, outdir: str, table: str, small: bool = False) -> None:
    (df.coalesce(1) if small else df).write.mode("overwrite").parquet(os.path.join(outdir, table))


def write_tables(spark: SparkSession, csv: str, outdir: str, kept: DataFrame, quarantine: DataFrame) -> None:
    src = source_uri(csv)
    ingested = F.to_timestamp(lit(INGESTED_AT))
    stamp = [ingested.alias("ingested_at"), lit("spark").alias("run_id")]
    lineage = [lit(src).alias("source_file"), col("ln").alias("source_line"), *stamp]
    part = f"pa_date={PA_DATE}"
    write(
        kept.select(
            "client_id", "client_name", "order_id", "product_id", "product_description",
            "product_price", "product_ccf", "product_volume", "point_of_sale_channel", "status",
            "total_price", "total_volume", *lineage,
        ),
        outdir, f"orders/{part}",
    )

    def ids(c, pairs):
        out = F.when(lit(False), lit(None))
        for i, n in pairs:
            out = out.when(col(c) == n, lit(i))
        return out.cast("int")

    write(
        kept.select(
            "order_id", "product_id", "client_id", ids("status", STATUSES).alias("status_id"),
            ids("point_of_sale_channel", CHANNELS).alias("channel_id"), col("product_ccf").alias("units"),
            col("product_price").alias("unit_price"), "total_price", "total_volume", *lineage,
        ),
        outdir, f"model/fact_orders/{part}",
    )
    write(
        kept.groupBy("client_id").agg(F.max_by("client_name", "ln").alias("client_name")).select("*", *stamp),
        outdir, f"model/dim_clients/{part}",
    )
    write(
        kept.groupBy("product_id")
        .agg(*(F.max_by(c, "ln").alias(c) for c in ("product_description", "product_price", "product_volume")))
        .select("*", *stamp),
        outdir, f"model/dim_products/{part}",
    )
    write(spark.createDataFrame(STATUSES, "status_id int, status string"), outdir, f"model/dim_status/{part}", small=True)
    write(spark.createDataFrame(CHANNELS, "channel_id int, channel string"), outdir, f"model/dim_channels/{part}", small=True)
    write(
        quarantine.select(
            lit(src).alias("source_file"), col("ln").alias("source_line"), "reason",
            col("raw").alias("raw_text"), "kept_line", *stamp,
        ),
        outdir, f"quarantine/{part}", small=True,
    )


def write_aggregates(outdir: str, kept: DataFrame) -> None:
    for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
        write(
            kept.groupBy(key).agg(
                F.count(lit(1)).alias("orders"),
                F.sum("product_ccf").alias("units"),
                F.sum("total_price").alias("total_price"),
            ),
            outdir, f"aggregates/{name}", small=True,
        )


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "peer_spark.py")
    index, field_count = parse_header(csv)
    ph = Phases()
    spark = session(csv, outdir, threads)
    ph.mark("spark_start")

    # 1. Lines: read once, cached ----------------------------------------------------------------
    source = Lines(spark, csv)
    lines = source.numbered()
    ph.mark("read_lines")

    # 2. Multi-line records (small, broadcast) ---------------------------------------------------
    odd_lines = lines.where(col("nq") % 2 == 1).persist()
    pairs, gap = pairs_of(lines, odd_lines)
    qrec, covered = multi_line_records(odd_lines, gap, pairs)
    qrec = qrec.persist()
    covered = covered.persist()
    qrec.count()
    ph.mark("records")

    # 3. Parse and validate: the typed rows, cached ----------------------------------------------
    records = validated(split_records(lines, covered, qrec), index, field_count).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    rows_read = records.count()
    blank_lines = lines.where(body() == "").join(F.broadcast(covered), "ln", "left_anti").count()
    ph.mark("parse_validate")

    # 4. Dedup -----------------------------------------------------------------------------------
    valid = records.where(col("reason").isNull())
    dropped = judge_duplicates(valid).persist()
    dropped.count()
    kept = valid.join(F.broadcast(dropped.select("ln")), "ln", "left_anti")
    ph.mark("dedup")

    # 5. Parquet ---------------------------------------------------------------------------------
    conflicts = dropped.where(col("verdict") == "key_conflict")
    one_line_texts = lines.join(F.broadcast(conflicts.select("ln")), "ln", "left_semi").join(
        F.broadcast(qrec.select("ln")), "ln", "left_anti"
    ).select("ln", body().alias("raw"))
    texts = qrec.select("ln", col("rec").alias("raw")).unionByName(one_line_texts)
    quarantine = (
        records.where(col("reason").isNotNull())
        .select("ln", "reason", "raw", lit(None).cast("long").alias("kept_line"))
        .unionByName(
            conflicts.join(F.broadcast(texts), "ln").select("ln", lit("key_conflict").alias("reason"), "raw", "kept_line")
        )
        .persist()
    )
    write_tables(spark, csv, outdir, kept, quarantine)
    source.unpersist()
    ph.mark("write")
    write_aggregates(outdir, kept)
    ph.mark("aggregates")

    by_reason = {r["reason"]: r["count"] for r in quarantine.groupBy("reason").count().collect()}
    exact_duplicates = dropped.where(col("verdict") == "duplicate").count()
    summary = kept.agg(F.count(lit(1)), F.sum("total_price"), F.sum("total_volume")).collect()[0]
    by_status = {r["status"]: r["count"] for r in kept.groupBy("status").count().collect()}
    emit(
        rows_read=rows_read,
        kept=summary[0],
        exact_duplicates=exact_duplicates,
        rejected=sum(by_reason.values()),
        sum_total_price=summary[1],
        sum_total_volume=summary[2],
        by_status=by_status,
        by_reason=by_reason,
        blank_lines=blank_lines,
        phases=ph,
    )
    spark.stop()


if __name__ == "__main__":
    main()
