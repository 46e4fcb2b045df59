"""The engine's job done by Polars: `python peer_polars.py <csv> <outdir> <threads>`.

All work is Polars expressions on its thread pool (POLARS_MAX_THREADS=N, set before import):

1. Physical lines. `scan_csv` with no quote character and a separator that never occurs gives one
   string per physical line, numbered in file order (header = 1). `encoding="utf8-lossy"` keeps a
   line that is not valid UTF-8 (its bad bytes become U+FFFD, which marks it invalid).
2. Records. Same rule as the engine: a line with an even number of `"` is a record on its own;
   the few lines with an odd number are paired (opener with the next odd line) and checked under
   the strict RFC 4180 rules with regexes (`common.RE_OPEN`/`RE_MID`/`RE_CLOSE`); a valid pair is
   one record, otherwise only the first line is rejected and reading resumes on the next line.
3. Fields. Records without `"` are split on commas; records with quotes must match the strict
   grammar (`RE_COMPLETE`) and are split with `str.extract_all`, then unquoted.
4. Rules, first failure wins, in the engine's order; DECIMAL(18,4) throughout, never floats.
5. Dedup on (order_id, product_id): first row by line kept; later rows with the same normalised
   values (compared by a 64-bit hash of them) are exact duplicates, others key conflicts.
6. Snappy Parquet: orders (in pa_date=…/), fact_orders, dim_clients, dim_products, dim_status,
   dim_channels, quarantine; plus the per-client/product/status aggregates.
"""

from __future__ import annotations

import os
import sys

if len(sys.argv) == 4:
    os.environ["POLARS_MAX_THREADS"] = sys.argv[3]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import polars as pl  # noqa: E402

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
    parse_header,
    source_uri,
    usage,
)

DEC = pl.Decimal(18, 4)
WIDE = pl.Decimal(38, 4)


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "peer_polars.py")
    assert pl.thread_pool_size() == threads, (pl.thread_pool_size(), threads)
    index, field_count = parse_header(csv)
    ph = Phases()
    col = pl.col

    # 1. Physical lines ---------------------------------------------------------------------------
    lines = (
        pl.scan_csv(
            csv,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"line": pl.String},
            encoding="utf8-lossy",
            row_index_name="ln",
            row_index_offset=1,
            empty_string_is_null=False,
            truncate_ragged_lines=True,
        )
        .with_columns(col("line").fill_null(""))
        .filter(col("ln") > 1)
        .with_columns(
            col("ln").cast(pl.Int64),
            bad_utf8=col("line").str.contains("\ufffd", literal=True),
            nq=col("line").str.count_matches('"', literal=True),
        )
        .collect()
    )
    ph.mark("read_lines")

    # 2. Records ----------------------------------------------------------------------------------
    odd = (
        lines.lazy()
        .filter(col("nq") % 2 == 1)
        .with_columns(
            opens=col("line").str.contains(RE_OPEN),
            closes=col("line").str.contains(RE_CLOSE),
        )
        .with_columns(
            k=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
            nxt=col("ln").shift(-1),
            next_closes=col("closes").shift(-1).fill_null(False),
        )
        .collect()
    )
    gaps = (
        odd.lazy()
        .filter(col("opens") & col("next_closes") & (col("nxt") > col("ln") + 1))
        .select("k", mid=pl.int_ranges(col("ln") + 1, col("nxt")))
        .explode("mid")
        .join(lines.lazy().select("ln", "line"), left_on="mid", right_on="ln")
        .filter(~col("line").str.contains(RE_MID))
        .select("k")
        .unique()
        .collect()
    )
    pairs = (
        odd.lazy()
        .join(gaps.lazy().with_columns(bad_gap=pl.lit(True)), on="k", how="left")
        .sort("k")
        .with_columns(ok=col("opens") & col("next_closes") & col("bad_gap").is_null())
        .with_columns(
            last_bad=pl.when(~col("ok")).then(col("k")).otherwise(None).forward_fill().fill_null(0)
        )
        .filter(col("ok") & ((col("k") - col("last_bad") - 1) % 2 == 0))
        .select("ln", "nxt")
        .collect()
    )
    members = (
        pairs.lazy()
        .select(start="ln", member=pl.int_ranges(col("ln"), col("nxt") + 1))
        .explode("member")
        .join(lines.lazy().select("ln", "line", "bad_utf8"), left_on="member", right_on="ln")
        .sort("member")
        .collect()
    )
    joined = members.group_by("start").agg(
        rec=col("line").str.join("\n"), joined_bad_utf8=col("bad_utf8").any()
    )
    covered = members.filter(col("member") != col("start")).select(ln="member")

    starts = (
        lines.lazy()
        .join(covered.lazy(), on="ln", how="anti", maintain_order="left")
        .join(joined.lazy(), left_on="ln", right_on="start", how="left", maintain_order="left")
        .filter(col("rec").is_not_null() | (col("line") != ""))
        .with_columns(
            quoting=pl.when(col("rec").is_not_null() | (col("nq") == 0))
            .then(pl.lit("ok"))
            .when(col("nq") % 2 == 1)
            .then(
                pl.when(col("line").str.contains(RE_OPEN))
                .then(pl.lit("unterminated_quote"))
                .otherwise(pl.lit("bad_quoting"))
            )
            .when(col("line").str.contains(RE_COMPLETE))
            .then(pl.lit("ok"))
            .otherwise(pl.lit("bad_quoting")),
            bad_utf8=pl.coalesce("joined_bad_utf8", "bad_utf8"),
            rec=pl.coalesce("rec", "line"),
            quoted=col("nq") > 0,
        )
        .select("ln", "rec", "bad_utf8", "quoting", "quoted")
        .collect()
    )
    blank_lines = (
        lines.lazy()
        .join(covered.lazy(), on="ln", how="anti")
        .filter(col("line") == "")
        .select(pl.len())
        .collect()
        .item()
    )
    del lines, members, odd
    rows_read = starts.height
    ph.mark("records")

    # 3. Fields -----------------------------------------------------------------------------------
    good = starts.lazy().filter(col("quoting") == "ok")
    plain = good.filter(~col("quoted")).with_columns(fs=col("rec").str.split(","))
    quoted = good.filter(col("quoted")).with_columns(
        fs=(col("rec") + ",")
        .str.extract_all(RE_SPLIT)
        .list.eval(
            pl.element()
            .str.strip_suffix(",")
            .pipe(
                lambda f: pl.when(f.str.starts_with('"'))
                .then(f.str.slice(1, f.str.len_chars() - 2).str.replace_all('""', '"', literal=True))
                .otherwise(f)
            )
        )
    )
    fields = pl.concat([plain, quoted]).sort("ln")

    # 4. Rules ------------------------------------------------------------------------------------
    def fld(name: str) -> pl.Expr:
        return col("fs").list.get(index[name], null_on_oob=True).fill_null("").str.strip_chars(" \t")

    def int_val(s: pl.Expr) -> pl.Expr:
        v = s.cast(pl.Int64, strict=False)
        return pl.when(s.str.contains(RE_INT) & (v > 0)).then(v)

    def dec_val(s: pl.Expr) -> pl.Expr:
        ok = s.str.contains(RE_DECIMAL) & ~s.str.contains(RE_DECIMAL_TOO_LONG)
        return pl.when(ok).then(s.cast(DEC, strict=False))

    channel_map = {n.lower(): n for _, n in CHANNELS}
    status_map = {n: n for _, n in STATUSES}
    max_dec = pl.lit(MAX_DECIMAL).cast(WIDE)
    typed = fields.with_columns(
        nf=col("fs").list.len(),
        client_id=int_val(fld("client_id")),
        client_name=fld("client_name"),
        order_id=int_val(fld("order_id")),
        product_id=int_val(fld("product_id")),
        product_description=fld("product_description"),
        product_price=dec_val(fld("product_price")),
        product_ccf=int_val(fld("product_ccf")),
        product_volume=dec_val(fld("product_volume")),
        point_of_sale_channel=fld("point_of_sale_channel")
        .str.to_lowercase()
        .replace_strict(channel_map, default=None, return_dtype=pl.String),
        status=fld("status")
        .str.to_lowercase()
        .replace_strict(status_map, default=None, return_dtype=pl.String),
    ).with_columns(
        wide_price=col("product_price").cast(WIDE) * col("product_ccf"),
        wide_volume=col("product_volume").cast(WIDE) * col("product_ccf"),
    )
    reason = (
        pl.when(col("nf") != field_count).then(pl.lit("field_count"))
        .when(col("bad_utf8")).then(pl.lit("invalid_utf8"))
        .when(col("client_id").is_null()).then(pl.lit("invalid_client_id"))
        .when(col("client_name") == "").then(pl.lit("empty_client_name"))
        .when(col("order_id").is_null()).then(pl.lit("invalid_order_id"))
        .when(col("product_id").is_null()).then(pl.lit("invalid_product_id"))
        .when(col("product_description") == "").then(pl.lit("empty_product_description"))
        .when(col("product_price").is_null()).then(pl.lit("invalid_product_price"))
        .when(col("product_ccf").is_null()).then(pl.lit("invalid_product_ccf"))
        .when(col("product_volume").is_null() | (col("product_volume") == pl.lit(0).cast(DEC)))
        .then(pl.lit("invalid_product_volume"))
        .when(col("point_of_sale_channel").is_null()).then(pl.lit("unknown_channel"))
        .when(col("status").is_null()).then(pl.lit("unknown_status"))
        .when((col("wide_price") > max_dec) | (col("wide_volume") > max_dec))
        .then(pl.lit("total_overflow"))
    )
    checked = (
        typed.with_columns(reason=reason)
        .with_columns(
            total_price=pl.when(col("reason").is_null()).then(col("wide_price")).cast(DEC),
            total_volume=pl.when(col("reason").is_null()).then(col("wide_volume")).cast(DEC),
        )
        .drop("fs", "wide_price", "wide_volume", "quoting", "quoted")
        .collect()
    )
    rule_rejects = checked.filter(col("reason").is_not_null()).select("ln", "reason")
    valid = checked.filter(col("reason").is_null()).drop("reason", "rec", "bad_utf8")
    del checked
    ph.mark("parse_validate")

    # 5. Dedup ------------------------------------------------------------------------------------
    value_cols = [
        "client_id",
        "client_name",
        "product_description",
        "product_price",
        "product_ccf",
        "product_volume",
        "point_of_sale_channel",
        "status",
    ]
    keys = ["order_id", "product_id"]
    # The window runs over a narrow projection; the kept rows are then taken from `valid`.
    judged = (
        valid.lazy()
        .select("ln", *keys, fp=pl.struct(value_cols).hash(seed=0))
        .with_columns(
            kept_line=col("ln").first().over(keys),
            first_fp=col("fp").first().over(keys),
        )
        .select(
            "ln",
            "kept_line",
            verdict=pl.when(col("ln") == col("kept_line"))
            .then(pl.lit("kept"))
            .when(col("fp") == col("first_fp"))
            .then(pl.lit("duplicate"))
            .otherwise(pl.lit("key_conflict")),
        )
        .collect()
    )
    kept = valid.filter(judged["verdict"] == "kept")
    del valid

    ph.mark("dedup")

    # 6. Parquet ----------------------------------------------------------------------------------
    src = source_uri(csv)
    ingested = pl.lit(INGESTED_AT).str.to_datetime(time_unit="ms", time_zone="UTC")
    lineage = [
        pl.lit(src).alias("source_file"),
        col("ln").alias("source_line"),
        ingested.alias("ingested_at"),
        pl.lit("polars").alias("run_id"),
    ]

    def write(df: pl.DataFrame, table: str, partitioned: bool = True) -> None:
        folder = os.path.join(outdir, table, f"pa_date={PA_DATE}") if partitioned else os.path.join(outdir, os.path.dirname(table))
        os.makedirs(folder, exist_ok=True)
        name = "part-0.parquet" if partitioned else os.path.basename(table)
        df.write_parquet(os.path.join(folder, name), compression="snappy")

    rejected = pl.concat(
        [
            starts.filter(col("quoting") != "ok").select(
                "ln", reason="quoting", kept_line=pl.lit(None, pl.Int64)
            ),
            rule_rejects.with_columns(kept_line=pl.lit(None, pl.Int64)),
            judged.filter(col("verdict") == "key_conflict").select(
                "ln", reason=pl.lit("key_conflict"), kept_line="kept_line"
            ),
        ]
    )
    write(
        rejected.join(starts.select("ln", "rec"), on="ln")
        .sort("ln")
        .select(
            pl.lit(src).alias("source_file"), col("ln").alias("source_line"), "reason",
            col("rec").alias("raw_text"), "kept_line", ingested.alias("ingested_at"),
            pl.lit("polars").alias("run_id"),
        ),
        "quarantine",
    )
    del starts
    write(
        kept.select(
            "client_id", "client_name", "order_id", "product_id", "product_description",
            "product_price", "product_ccf", "product_volume", "point_of_sale_channel", "status",
            "total_price", "total_volume", *lineage,
        ),
        "orders",
    )
    status_id = col("status").replace_strict({n: i for i, n in STATUSES}, return_dtype=pl.Int32)
    channel_id = col("point_of_sale_channel").replace_strict(
        {n: i for i, n in CHANNELS}, return_dtype=pl.Int32
    )
    write(
        kept.select(
            "order_id", "product_id", "client_id", status_id.alias("status_id"),
            channel_id.alias("channel_id"), col("product_ccf").alias("units"),
            col("product_price").alias("unit_price"), "total_price", "total_volume", *lineage,
        ),
        "model/fact_orders",
    )
    write(
        kept.group_by("client_id")
        .agg(col("client_name").last())
        .sort("client_id")
        .with_columns(ingested.alias("ingested_at"), pl.lit("polars").alias("run_id")),
        "model/dim_clients",
    )
    write(
        kept.group_by("product_id")
        .agg(col("product_description", "product_price", "product_volume").last())
        .sort("product_id")
        .with_columns(ingested.alias("ingested_at"), pl.lit("polars").alias("run_id")),
        "model/dim_products",
    )
    write(
        pl.DataFrame(STATUSES, schema=["status_id", "status"], orient="row"),
        "model/dim_status",
    )
    write(
        pl.DataFrame(CHANNELS, schema=["channel_id", "channel"], orient="row"),
        "model/dim_channels",
    )
    ph.mark("write")

    # Aggregates (part of the job) ------------------------------------------------------------------
    for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
        write(
            kept.group_by(key)
            .agg(orders=pl.len(), units=col("product_ccf").sum(), total_price=col("total_price").sum())
            .sort(key),
            f"aggregates/{name}.parquet",
            partitioned=False,
        )
    ph.mark("aggregates")

    by_reason = dict(rejected.group_by("reason").len().iter_rows())
    verdicts = dict(judged.group_by("verdict").len().iter_rows())
    sums = kept.select(col("total_price").sum(), col("total_volume").sum()).row(0)
    emit(
        rows_read=rows_read,
        kept=kept.height,
        exact_duplicates=verdicts.get("duplicate", 0),
        rejected=rejected.height,
        sum_total_price=sums[0],
        sum_total_volume=sums[1],
        by_status=dict(kept.group_by("status").len().iter_rows()),
        by_reason=by_reason,
        blank_lines=blank_lines,
        phases=ph,
    )


if __name__ == "__main__":
    main()
