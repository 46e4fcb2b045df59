"""Row-by-row comparison of a peer's output with the engine's lake (a development check).

    python diff_lake.py <engine-lake> <peer-outdir>

Compares, by source line: every business column of `orders` (values, totals), `fact_orders`
ids, `quarantine` (line, reason, kept_line), and `dim_clients` / `dim_products`. Prints one line
per table and exits 1 on any difference. compare.py runs it after the timed runs when given
`--diff`; it is not part of the timing.
"""

from __future__ import annotations

import sys

import duckdb

ORDERS = (
    "source_line, client_id, client_name, order_id, product_id, product_description, "
    "product_price, product_ccf, product_volume, point_of_sale_channel, status, "
    "total_price, total_volume"
)
FACT = (
    "source_line, order_id, product_id, client_id, status_id, channel_id, units, unit_price, "
    "total_price, total_volume"
)
CHECKS = [
    ("orders", "orders", ORDERS),
    ("fact_orders", "model/fact_orders", FACT),
    ("quarantine", "quarantine", "source_line, reason, kept_line"),
    ("dim_clients", "model/dim_clients", "client_id, client_name"),
    (
        "dim_products",
        "model/dim_products",
        "product_id, product_description, product_price, product_volume",
    ),
]


def diff(engine_lake: str, peer_out: str) -> bool:
    con = duckdb.connect()
    same = True
    for name, prefix, cols in CHECKS:
        a = f"read_parquet('{engine_lake}/{prefix}/**/*.parquet', hive_partitioning=false)"
        b = f"read_parquet('{peer_out}/{prefix}/**/*.parquet', hive_partitioning=false)"
        only_engine = con.execute(
            f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b})"
        ).fetchone()[0]
        only_peer = con.execute(
            f"SELECT count(*) FROM (SELECT {cols} FROM {b} EXCEPT ALL SELECT {cols} FROM {a})"
        ).fetchone()[0]
        rows = con.execute(f"SELECT count(*) FROM {b}").fetchone()[0]
        ok = only_engine == 0 and only_peer == 0
        same &= ok
        print(
            f"{name:13} {'same' if ok else 'DIFFERENT'}: {rows} rows; "
            f"only in engine {only_engine}, only in peer {only_peer}"
        )
        if not ok:
            sample = con.execute(
                f"(SELECT 'engine' AS side, {cols} FROM {a} EXCEPT ALL SELECT 'engine', {cols} FROM {b}) "
                f"UNION ALL (SELECT 'peer', {cols} FROM {b} EXCEPT ALL SELECT 'peer', {cols} FROM {a}) "
                "ORDER BY 2 LIMIT 6"
            ).fetchall()
            for row in sample:
                print("   ", row)
    return same


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python diff_lake.py <engine-lake> <peer-outdir>")
    sys.exit(0 if diff(sys.argv[1], sys.argv[2]) else 1)
