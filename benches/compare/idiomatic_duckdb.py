"""The orders job as a DuckDB user writes it in an afternoon:
`python idiomatic_duckdb.py <csv> <outdir> <threads>`.

DuckDB's own typed CSV reader with its reject store, rows with a missing value dropped, exact
duplicates removed with DISTINCT, totals as DECIMAL(18,4), Parquet partitioned by pa_date, a small
star schema and three aggregates. Its rules are DuckDB's, not the engine's, so its counts differ
from the engine's (see README.md, "Two tracks").
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import duckdb  # noqa: E402

from common import PA_DATE, Phases, emit_idiomatic, memory_budget_gib, usage  # noqa: E402

TYPES = {
    "client_id": "BIGINT",
    "client_name": "VARCHAR",
    "order_id": "BIGINT",
    "product_id": "BIGINT",
    "product_description": "VARCHAR",
    "product_price": "DECIMAL(18,4)",
    "product_ccf": "BIGINT",
    "product_volume": "DECIMAL(18,4)",
    "point_of_sale_channel": "VARCHAR",
    "status": "VARCHAR",
}


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "idiomatic_duckdb.py")
    ph = Phases()
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute(f"SET memory_limit='{memory_budget_gib(csv)}GiB'")
    con.execute(f"SET temp_directory='{os.path.join(outdir, '_duckdb_tmp')}'")
    # Row order is nobody's business here; DuckDB is freer without it.
    con.execute("SET preserve_insertion_order=false")

    types = ", ".join(f"'{c}': '{t}'" for c, t in TYPES.items())
    # GROUP BY ALL is DISTINCT that also says how often each row came.
    con.execute(
        f"""
        CREATE TABLE loaded AS
        SELECT *, count(*) AS copies
        FROM read_csv('{csv}', header=true, delim=',', quote='"', escape='"', types={{{types}}},
                      store_rejects=true)
        GROUP BY ALL
        """
    )
    # A total that does not fit DECIMAL(18,4) is as malformed as a value that does not parse.
    con.execute(
        """
        CREATE VIEW complete AS
        FROM (
            SELECT *, TRY_CAST(product_price * product_ccf AS DECIMAL(18,4)) AS total_price,
                      TRY_CAST(product_volume * product_ccf AS DECIMAL(18,4)) AS total_volume
            FROM loaded
        )
        WHERE COLUMNS(*) IS NOT NULL
        """
    )
    con.execute("CREATE VIEW orders AS SELECT * EXCLUDE (copies) FROM complete")
    ph.mark("load_dedup")

    def copy(select: str, path: str, partitioned: bool = False) -> None:
        target = os.path.join(outdir, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        options = "FORMAT parquet, COMPRESSION snappy"
        if partitioned:
            options += ", PARTITION_BY (pa_date)"
            select = f"SELECT *, DATE '{PA_DATE}' AS pa_date FROM ({select})"
        con.execute(f"COPY ({select}) TO '{target}' ({options})")

    copy("SELECT * FROM orders", "orders", partitioned=True)
    con.execute(
        "CREATE TABLE dim_status AS SELECT row_number() OVER (ORDER BY status) AS status_id, status "
        "FROM (SELECT DISTINCT status FROM orders)"
    )
    con.execute(
        "CREATE TABLE dim_channels AS SELECT row_number() OVER (ORDER BY point_of_sale_channel) "
        "AS channel_id, point_of_sale_channel AS channel FROM (SELECT DISTINCT point_of_sale_channel FROM orders)"
    )
    copy(
        """SELECT o.order_id, o.product_id, o.client_id, s.status_id, c.channel_id,
                  o.product_ccf AS units, o.product_price AS unit_price, o.total_price, o.total_volume
           FROM orders o JOIN dim_status s USING (status)
           JOIN dim_channels c ON c.channel = o.point_of_sale_channel""",
        "model/fact_orders",
        partitioned=True,
    )
    copy("SELECT client_id, any_value(client_name) AS client_name FROM orders GROUP BY client_id", "model/dim_clients.parquet")
    copy(
        """SELECT product_id, any_value(product_description) AS product_description,
                  any_value(product_price) AS product_price, any_value(product_volume) AS product_volume
           FROM orders GROUP BY product_id""",
        "model/dim_products.parquet",
    )
    copy("SELECT * FROM dim_status", "model/dim_status.parquet")
    copy("SELECT * FROM dim_channels", "model/dim_channels.parquet")
    ph.mark("write")

    for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
        copy(
            f"""SELECT {key}, count(*) AS orders, sum(product_ccf) AS units,
                       sum(total_price) AS total_price FROM orders GROUP BY {key}""",
            f"aggregates/{name}.parquet",
        )
    ph.mark("aggregates")

    reader_rejects = con.execute("SELECT count(DISTINCT (file_id, line)) FROM reject_errors").fetchone()[0]
    parsed = con.execute("SELECT sum(copies) FROM loaded").fetchone()[0]
    kept, complete = con.execute("SELECT count(*), sum(copies) FROM complete").fetchone()
    price, volume = con.execute("SELECT sum(total_price), sum(total_volume) FROM orders").fetchone()
    emit_idiomatic(
        rows_read=parsed + reader_rejects,
        kept=kept,
        rejected=reader_rejects + parsed - complete,
        duplicates_removed=complete - kept,
        sum_total_price=price,
        sum_total_volume=volume,
        by_status=dict(con.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall()),
        phases=ph,
    )


if __name__ == "__main__":
    main()
