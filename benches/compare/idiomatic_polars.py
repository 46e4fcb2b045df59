"""The orders job as a Polars user writes it in an afternoon:
`python idiomatic_polars.py <csv> <outdir> <threads>`.

One lazy plan on the streaming engine: `scan_csv` with a schema and `ignore_errors=True` (a value
that does not parse becomes null), rows with a null dropped, exact duplicates removed with
`unique`, totals as Decimal(18,4), Parquet partitioned by pa_date, a small star schema and three
aggregates, all sunk by one `collect_all`. Its rules are Polars', not the engine's, so its counts
differ from the engine's (see README.md, "Two tracks").
"""

from __future__ import annotations

import os
import sys

if len(sys.argv) == 4:
    os.environ["POLARS_MAX_THREADS"] = sys.argv[3]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import polars as pl  # noqa: E402

from common import PA_DATE, Phases, emit_idiomatic, usage  # noqa: E402

DEC = pl.Decimal(18, 4)
SCHEMA = {
    "client_id": pl.Int64,
    "client_name": pl.String,
    "order_id": pl.Int64,
    "product_id": pl.Int64,
    "product_description": pl.String,
    "product_price": DEC,
    "product_ccf": pl.Int64,
    "product_volume": DEC,
    "point_of_sale_channel": pl.String,
    "status": pl.String,
}
col = pl.col


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "idiomatic_polars.py")
    assert pl.thread_pool_size() == threads, (pl.thread_pool_size(), threads)
    ph = Phases()

    # Polars' quote-aware reader stops at this file's broken quotes (`could not parse "Aztec`,
    # whatever the options); the way through is to read without quote handling, as text, and
    # let a value that does not parse become null.
    loaded = pl.scan_csv(
        csv,
        quote_char=None,
        infer_schema=False,
        ignore_errors=True,
        truncate_ragged_lines=True,
        encoding="utf8-lossy",
    ).select(col(c).cast(t, strict=False) for c, t in SCHEMA.items())
    # A total that does not fit Decimal(18,4) is as malformed as a value that does not parse.
    complete = loaded.with_columns(
        total_price=(col("product_price") * col("product_ccf")).cast(DEC, strict=False),
        total_volume=(col("product_volume") * col("product_ccf")).cast(DEC, strict=False),
    ).drop_nulls()
    orders = complete.unique().with_columns(pa_date=pl.lit(PA_DATE))
    dim_status = orders.select("status").unique().sort("status").with_row_index("status_id", offset=1)
    dim_channels = (
        orders.select(channel="point_of_sale_channel").unique().sort("channel").with_row_index("channel_id", offset=1)
    )
    fact = (
        orders.join(dim_status, on="status")
        .join(dim_channels, left_on="point_of_sale_channel", right_on="channel")
        .select(
            "order_id", "product_id", "client_id", "status_id", "channel_id",
            units="product_ccf", unit_price="product_price", total_price="total_price",
            total_volume="total_volume", pa_date="pa_date",
        )
    )

    def sink(lf: pl.LazyFrame, path: str, partitioned: bool = False) -> pl.LazyFrame:
        target = os.path.join(outdir, path)
        if partitioned:
            target = pl.PartitionBy(target, key="pa_date")
        return lf.sink_parquet(target, compression="snappy", mkdir=True, lazy=True)

    outputs = [
        sink(orders, "orders", partitioned=True),
        sink(fact, "model/fact_orders", partitioned=True),
        sink(orders.group_by("client_id").agg(col("client_name").first()), "model/dim_clients.parquet"),
        sink(
            orders.group_by("product_id").agg(
                col("product_description", "product_price", "product_volume").first()
            ),
            "model/dim_products.parquet",
        ),
        sink(dim_status, "model/dim_status.parquet"),
        sink(dim_channels, "model/dim_channels.parquet"),
    ]
    for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
        outputs.append(
            sink(
                orders.group_by(key).agg(
                    orders=pl.len(), units=col("product_ccf").sum(), total_price=col("total_price").sum()
                ),
                f"aggregates/{name}.parquet",
            )
        )
    # The counts ride along in the same plan: the scan and the dedup are shared, not redone.
    counts = [
        loaded.select(pl.len()),
        complete.select(pl.len()),
        orders.select(pl.len(), col("total_price").sum(), col("total_volume").sum()),
        orders.group_by("status").len(),
    ]
    *_, read, complete_n, totals, by_status = pl.collect_all(outputs + counts, engine="streaming")
    ph.mark("load_dedup_write_aggregates")

    kept, price, volume = totals.row(0)
    emit_idiomatic(
        rows_read=read.item(),
        kept=kept,
        rejected=read.item() - complete_n.item(),
        duplicates_removed=complete_n.item() - kept,
        sum_total_price=price,
        sum_total_volume=volume,
        by_status=dict(by_status.iter_rows()),
        phases=ph,
    )


if __name__ == "__main__":
    main()
