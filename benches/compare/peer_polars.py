"""The engine's job done by Polars: `python peer_polars.py <csv> <outdir> <threads>`.

Lazy plans on the streaming engine, POLARS_MAX_THREADS=N (set before import):

1. One pass over the file (`scan_csv` with no quote character and a separator that never
   occurs: one string per physical line, numbered by the scan's row index) feeds three outputs
   of one `collect_all`: the ~3% of lines with an odd number of `"` (they open or close a
   multi-line record, or are broken), the blank lines, and every other line parsed and validated
   as a one-line record: split on commas, or, when it holds quotes and follows the strict
   RFC 4180 grammar (`common.RE_COMPLETE`), split by `RE_SPLIT` and unquoted; then every rule in
   the engine's order, DECIMAL(18,4), the first failure is the reason. `encoding="utf8-lossy"`
   keeps a line that is not UTF-8 (its bad bytes become U+FFFD, which marks it invalid).
2. Multi-line records, from the small set: each odd line is paired with the next one and the
   pair checked with `RE_OPEN`/`RE_MID`/`RE_CLOSE`; a valid pair is one record, otherwise only
   its first line is rejected and reading resumes on the next line (the engine's recovery). The
   one-line records those pairs cover are dropped by an anti-join.
3. Dedup on (order_id, product_id): `is_duplicated` flags the few rows whose key repeats; only
   those are ranked by line into the first occurrence, exact duplicates (same normalised values,
   compared by a 64-bit hash) and key conflicts.
4. Snappy Parquet through `sink_parquet`, all tables and the per-client/product/status
   aggregates in one `collect_all`. Output row order is not part of the contract
   (`maintain_order=False`).

A line's text is kept only where the quarantine needs it; the few lines found later to need
theirs (key conflicts, lines between the first and last line of a multi-line record) are read
back by number.
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
    RE_DECIMAL_18_4,
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
KEYS = ["order_id", "product_id"]
VALUES = [
    "client_id",
    "client_name",
    "product_description",
    "product_price",
    "product_ccf",
    "product_volume",
    "point_of_sale_channel",
    "status",
]
col = pl.col
# A line with an odd number of quotes: it opens or closes a multi-line record, or is broken.
ODD = col("line").str.count_matches('"', literal=True) % 2 == 1


def scan_lines(csv: str) -> pl.LazyFrame:
    """Every physical line after the header: `ln` (header = 1), `line`, `bad_utf8`."""
    return (
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
        .filter(col("ln") > 1)
        .select(
            col("ln").cast(pl.Int64),
            col("line").fill_null(""),
            bad_utf8=col("line").str.contains("\ufffd", literal=True),
        )
    )


def read_lines(csv: str, lns: pl.Series) -> pl.DataFrame:
    """`ln`, `line`, `bad_utf8` of the few lines numbered `lns` (a filtered re-read, skipped when
    there are none)."""
    wanted = scan_lines(csv).filter(col("ln").is_in(lns.implode()))
    if lns.is_empty():
        return wanted.clear().collect()
    return wanted.collect(engine="streaming")


def validated(records: pl.LazyFrame, index: dict[str, int], field_count: int) -> pl.LazyFrame:
    """Types the fields of every record and names its first broken rule (`reason`).

    `records` has `ln`, `nf` (its number of fields), `f<i>` (field i, unquoted, for the fields
    the contract reads), `quoting` ('ok' or the quoting reason), `bad_utf8` and `raw` (its text,
    kept only for rejected records)."""

    def fld(name: str) -> pl.Expr:
        return col(f"f{index[name]}").fill_null("").str.strip_chars(" \t")

    def int_val(s: pl.Expr) -> pl.Expr:
        v = s.cast(pl.Int64, strict=False)
        return pl.when(s.str.contains(RE_INT) & (v > 0)).then(v)

    def dec_val(s: pl.Expr) -> pl.Expr:
        return pl.when(s.str.contains(RE_DECIMAL_18_4)).then(s.cast(DEC, strict=False))

    channels = pl.Enum([n for _, n in CHANNELS])
    statuses = pl.Enum([n for _, n in STATUSES])
    typed = records.select(
        "ln",
        "quoting",
        "bad_utf8",
        "raw",
        "nf",
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
        .replace_strict({n.lower(): n for _, n in CHANNELS}, default=None, return_dtype=channels),
        status=fld("status")
        .str.to_lowercase()
        .replace_strict({n: n for _, n in STATUSES}, default=None, return_dtype=statuses),
    ).with_columns(
        wide_price=col("product_price").cast(WIDE) * col("product_ccf"),
        wide_volume=col("product_volume").cast(WIDE) * col("product_ccf"),
    )
    max_dec = pl.lit(MAX_DECIMAL).cast(WIDE)
    reason = (
        pl.when(col("quoting") != "ok").then(col("quoting"))
        .when(col("nf") != field_count).then(pl.lit("field_count"))
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
    return (
        typed.with_columns(reason=reason)
        .with_columns(
            total_price=pl.when(col("reason").is_null()).then(col("wide_price")).cast(DEC),
            total_volume=pl.when(col("reason").is_null()).then(col("wide_volume")).cast(DEC),
            raw=pl.when(col("reason").is_not_null()).then(col("raw")),
        )
        .drop("nf", "quoting", "bad_utf8", "wide_price", "wide_volume")
    )


def fields(index: dict[str, int], quoted: bool) -> dict[str, pl.Expr]:
    """`nf` and the fields the contract reads (`f<i>`) from `fs`, the list of a record's fields
    (a column, so the split runs once); quoted fields come as `RE_SPLIT` matched them (with
    their comma) and are unquoted here, column by column."""

    def unquote(f: pl.Expr) -> pl.Expr:
        f = f.str.strip_suffix(",")
        inner = f.str.slice(1, f.str.len_chars() - 2).str.replace_all('""', '"', literal=True)
        return pl.when(f.str.starts_with('"')).then(inner).otherwise(f)

    fs = col("fs")
    out = {"nf": fs.list.len()}
    for i in sorted(index.values()):
        f = fs.list.get(i, null_on_oob=True)
        out[f"f{i}"] = unquote(f) if quoted else f
    return out


def split_quoted(rec: pl.Expr) -> pl.Expr:
    return (rec + ",").str.extract_all(RE_SPLIT)


def one_line_records(lines: pl.LazyFrame, index: dict[str, int]) -> pl.LazyFrame:
    """Every line that is not blank and has an even number of quotes, as a one-line record:
    split on commas, or, if it holds quotes, checked against the strict grammar and split by
    `RE_SPLIT`. Two branches, so the regexes only run where there are quotes."""
    line = col("line")
    has_quote = line.str.contains('"', literal=True)
    single = lines.filter(~ODD & (line != ""))
    plain = (
        single.filter(~has_quote)
        .with_columns(fs=line.str.split(","))
        .select("ln", "bad_utf8", raw=line, quoting=pl.lit("ok"), **fields(index, quoted=False))
    )
    quoted = (
        single.filter(has_quote)
        .with_columns(fs=split_quoted(line))
        .select(
            "ln",
            "bad_utf8",
            raw=line,
            quoting=pl.when(line.str.contains(RE_COMPLETE)).then(pl.lit("ok")).otherwise(pl.lit("bad_quoting")),
            **fields(index, quoted=True),
        )
    )
    return pl.concat([plain, quoted])


def pairs_of(csv: str, odd_lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(`ln`, `nxt`), the first and last line of every multi-line record, and the text of the
    lines between them (`ln`, `line`, `bad_utf8`)."""
    odd = (
        odd_lines.lazy()
        .sort("ln")
        .select(
            "ln",
            opens=col("line").str.contains(RE_OPEN),
            k=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
            nxt=col("ln").shift(-1),
            next_closes=col("line").str.contains(RE_CLOSE).shift(-1).fill_null(False),
        )
        .collect()
    )
    # Lines between an opener and its closer must stay inside the quoted field. They are rare
    # (a field holding two line ends or more): read back by number.
    candidates = odd.filter(col("opens") & col("next_closes"))
    gap = read_lines(
        csv, candidates.select(ln=pl.int_ranges(col("ln") + 1, col("nxt"))).explode("ln")["ln"].drop_nulls()
    )
    bad_gap = (
        candidates.lazy()
        .join_where(gap.lazy().select(mid="ln", mid_line="line"), col("mid") > col("ln"), col("mid") < col("nxt"))
        .filter(~col("mid_line").str.contains(RE_MID))
        .select("k")
        .unique()
        .collect()
    )
    ok = col("opens") & col("next_closes") & ~col("k").is_in(bad_gap["k"].implode())
    last_bad = pl.when(~col("ok")).then(col("k")).forward_fill().fill_null(0)
    # A closer that also opens is taken by the pair before it: in a run of valid pairs sharing
    # lines, every other one from the run's start is a record.
    pairs = odd.with_columns(ok=ok).filter(col("ok") & ((col("k") - last_bad - 1) % 2 == 0)).select("ln", "nxt")
    return pairs, gap


def multi_line_records(
    odd_lines: pl.DataFrame, gap: pl.DataFrame, pairs: pl.DataFrame
) -> tuple[pl.DataFrame, pl.Series]:
    """The records that start on an odd line (`ln`, `rec`, `bad_utf8`, `quoting`), and the lines
    that multi-line records cover after their first."""
    members = pairs.select(start="ln", ln=pl.int_ranges(col("ln"), col("nxt") + 1)).explode("ln")
    covered = members.filter(col("ln") != col("start"))["ln"]
    texts = pl.concat([odd_lines.select("ln", "line", "bad_utf8"), gap])
    joined = (
        members.join(texts, on="ln")
        .sort("ln")
        .group_by("start")
        .agg(rec=col("line").str.join("\n"), bad_utf8=col("bad_utf8").any())
        .select(ln="start", rec="rec", bad_utf8="bad_utf8", quoting=pl.lit("ok"))
    )
    alone = odd_lines.filter(
        ~col("ln").is_in(covered.implode()) & ~col("ln").is_in(pairs["ln"].implode())
    ).select(
        "ln",
        rec="line",
        bad_utf8="bad_utf8",
        quoting=pl.when(col("line").str.contains(RE_OPEN))
        .then(pl.lit("unterminated_quote"))
        .otherwise(pl.lit("bad_quoting")),
    )
    return pl.concat([joined, alone]), covered


def judge_duplicates(records: pl.DataFrame) -> pl.DataFrame:
    """(`ln`, `kept_line`, `verdict`) of every valid row that is not its key's first."""
    valid = records.lazy().filter(col("reason").is_null())
    return (
        valid.filter(pl.struct(KEYS).is_duplicated())
        .select("ln", *KEYS, fp=pl.struct(VALUES).hash(seed=0))
        .with_columns(
            kept_line=col("ln").min().over(KEYS),
            first_fp=col("fp").sort_by("ln").first().over(KEYS),
        )
        .filter(col("ln") != col("kept_line"))
        .select(
            "ln",
            "kept_line",
            verdict=pl.when(col("fp") == col("first_fp"))
            .then(pl.lit("duplicate"))
            .otherwise(pl.lit("key_conflict")),
        )
        .collect()
    )


def sinks(csv: str, outdir: str, kept: pl.LazyFrame, quarantine: pl.LazyFrame) -> list[pl.LazyFrame]:
    src = source_uri(csv)
    ingested = pl.lit(INGESTED_AT).str.to_datetime(time_unit="ms", time_zone="UTC")
    stamp = [ingested.alias("ingested_at"), pl.lit("polars").alias("run_id")]
    lineage = [pl.lit(src).alias("source_file"), col("ln").alias("source_line"), *stamp]
    part = f"pa_date={PA_DATE}/part-0.parquet"
    as_text = [col("point_of_sale_channel", "status").cast(pl.String)]

    def sink(lf: pl.LazyFrame, path: str) -> pl.LazyFrame:
        return lf.sink_parquet(
            os.path.join(outdir, path),
            compression="snappy",
            maintain_order=False,
            mkdir=True,
            lazy=True,
        )

    def last(*names: str) -> list[pl.Expr]:
        """The value of each column on the key's last kept line (the engine's dimension rows)."""
        return [col(n).get(col("ln").arg_max()) for n in names]

    status_id = col("status").cast(pl.String).replace_strict({n: i for i, n in STATUSES}, return_dtype=pl.Int32)
    channel_id = col("point_of_sale_channel").cast(pl.String).replace_strict(
        {n: i for i, n in CHANNELS}, return_dtype=pl.Int32
    )
    out = [
        sink(
            kept.select(
                "client_id", "client_name", "order_id", "product_id", "product_description",
                "product_price", "product_ccf", "product_volume", *as_text,
                "total_price", "total_volume", *lineage,
            ),
            f"orders/{part}",
        ),
        sink(
            kept.select(
                "order_id", "product_id", "client_id", status_id.alias("status_id"),
                channel_id.alias("channel_id"), col("product_ccf").alias("units"),
                col("product_price").alias("unit_price"), "total_price", "total_volume", *lineage,
            ),
            f"model/fact_orders/{part}",
        ),
        sink(
            kept.group_by("client_id").agg(*last("client_name")).with_columns(*stamp),
            f"model/dim_clients/{part}",
        ),
        sink(
            kept.group_by("product_id")
            .agg(*last("product_description", "product_price", "product_volume"))
            .with_columns(*stamp),
            f"model/dim_products/{part}",
        ),
        sink(
            pl.LazyFrame(STATUSES, schema=["status_id", "status"], orient="row"),
            f"model/dim_status/{part}",
        ),
        sink(
            pl.LazyFrame(CHANNELS, schema=["channel_id", "channel"], orient="row"),
            f"model/dim_channels/{part}",
        ),
        sink(
            quarantine.select(
                pl.lit(src).alias("source_file"), col("ln").alias("source_line"), "reason",
                col("raw").alias("raw_text"), "kept_line", *stamp,
            ),
            f"quarantine/{part}",
        ),
    ]
    for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
        out.append(
            sink(
                kept.group_by(key).agg(
                    orders=pl.len(), units=col("product_ccf").sum(), total_price=col("total_price").sum()
                ).with_columns(col(key).cast(pl.String) if key == "status" else col(key)),
                f"aggregates/{name}.parquet",
            )
        )
    return out


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "peer_polars.py")
    assert pl.thread_pool_size() == threads, (pl.thread_pool_size(), threads)
    index, field_count = parse_header(csv)
    ph = Phases()

    # 1. One pass: the odd lines, the blank lines, and every other line parsed --------------
    lines = scan_lines(csv)
    odd_lines, blank, parsed = pl.collect_all(
        [
            lines.filter(ODD),
            lines.filter(col("line") == "").select("ln"),
            validated(one_line_records(lines, index), index, field_count),
        ],
        engine="streaming",
    )
    ph.mark("read_parse_validate")

    # 2. Multi-line records -----------------------------------------------------------------------
    pairs, gap = pairs_of(csv, odd_lines)
    qrec, covered = multi_line_records(odd_lines, gap, pairs)
    qrec_fields = (
        qrec.lazy()
        .with_columns(fs=split_quoted(col("rec")))
        .select("ln", "bad_utf8", "quoting", raw="rec", **fields(index, quoted=True))
    )
    records = pl.concat(
        [
            parsed.filter(~col("ln").is_in(covered.implode())),
            validated(qrec_fields, index, field_count).collect(),
        ]
    )
    blank_lines = blank.filter(~col("ln").is_in(covered.implode())).height
    del parsed
    ph.mark("records")

    # 3. Dedup ------------------------------------------------------------------------------------
    dropped = judge_duplicates(records)
    kept = records.lazy().filter(col("reason").is_null() & ~col("ln").is_in(dropped["ln"].implode()))
    ph.mark("dedup")

    # 4. Parquet ----------------------------------------------------------------------------------
    conflicts = dropped.filter(col("verdict") == "key_conflict").select(
        "ln", "kept_line", reason=pl.lit("key_conflict")
    )
    conflict_texts = pl.concat(
        [
            qrec.select("ln", raw="rec"),
            read_lines(csv, conflicts["ln"].filter(~conflicts["ln"].is_in(qrec["ln"].implode()))).select(
                "ln", raw="line"
            ),
        ]
    )
    quarantine = pl.concat(
        [
            records.filter(col("reason").is_not_null()).select(
                "ln", "reason", "raw", kept_line=pl.lit(None, pl.Int64)
            ),
            conflicts.join(conflict_texts, on="ln").select("ln", "reason", "raw", "kept_line"),
        ]
    )
    pl.collect_all(sinks(csv, outdir, kept, quarantine.lazy()), engine="streaming")
    ph.mark("write_and_aggregates")

    by_reason = dict(quarantine.group_by("reason").len().iter_rows())
    totals = kept.select(
        n=pl.len(), price=col("total_price").sum(), volume=col("total_volume").sum()
    ).collect()
    emit(
        rows_read=records.height,
        kept=totals["n"][0],
        exact_duplicates=dropped.filter(col("verdict") == "duplicate").height,
        rejected=quarantine.height,
        sum_total_price=totals["price"][0],
        sum_total_volume=totals["volume"][0],
        by_status=dict(kept.group_by(col("status").cast(pl.String)).len().collect().iter_rows()),
        by_reason=by_reason,
        blank_lines=blank_lines,
        phases=ph,
    )


if __name__ == "__main__":
    main()
