"""Report latency in DuckDB over the same Delta tables the API reads, side by side with the API.

    python report_latency.py <lake> [--rounds 5]

For each report it times, in one process, medians of `--rounds` after one warm-up:
  * `marts`: DuckDB running the API's current-state SQL (marts, `order_lines`) over the files
    of each table's current Delta snapshot;
  * `history`: DuckDB deriving the same answer the way a user of the history must — the latest
    version of every line by a window over `orders` — the fastest form we found for DuckDB
    (a `QUALIFY row_number()` over the lines of succeeded runs, aggregates after).
The file lists come from Python `deltalake` (the snapshot's add actions), so both read exactly
the committed files; DuckDB's own `delta` extension would need a download, which this machine
cannot do. Threads: `--threads` (default 2, like the API bench).
"""

import argparse
import json
import os
import statistics
import sys
import time

import duckdb
from deltalake import DeltaTable

TABLES = {
    "orders": ("orders", True),
    "order_lines": ("order_lines", True),
    "runs": ("runs", False),
    "dim_clients": ("model/dim_clients", True),
    "dim_products": ("model/dim_products", True),
    "dim_status": ("model/dim_status", True),
    "dim_channels": ("model/dim_channels", True),
    "mart_clients": ("marts/clients", False),
    "mart_products": ("marts/products", False),
    "mart_status": ("marts/status", False),
    "mart_channels": ("marts/channels", False),
    "mart_client_status": ("marts/client_status", False),
}

LATEST_DIM = """{name} AS (
    SELECT {id}, {col} FROM {table}
    WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'succeeded')
    QUALIFY row_number() OVER (PARTITION BY {id} ORDER BY ingested_at DESC, run_id DESC) = 1
)"""

PRODUCTS = LATEST_DIM.format(name="products", id="product_id", col="product_description", table="dim_products")
CLIENTS = LATEST_DIM.format(name="clients", id="client_id", col="client_name", table="dim_clients")

LATEST_LINES = """latest AS (
    SELECT * FROM orders
    WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'succeeded')
    QUALIFY row_number() OVER (PARTITION BY order_id, product_id
                               ORDER BY ingested_at DESC, run_id DESC) = 1
)"""

REPORTS = {
    "/sales/by-product": {
        "marts": f"""WITH {PRODUCTS}
SELECT a.product_id, p.product_description, a.orders, a.units, a.sales, a.volume
FROM mart_products a LEFT JOIN products p ON p.product_id = a.product_id
ORDER BY a.sales DESC, a.product_id LIMIT 100""",
        "history": f"""WITH {LATEST_LINES}, {PRODUCTS},
per_product AS (
    SELECT product_id, count(DISTINCT order_id) AS orders, sum(product_ccf) AS units,
           sum(total_price) AS sales, sum(total_volume) AS volume
    FROM latest GROUP BY product_id
)
SELECT a.product_id, p.product_description, a.orders, a.units, a.sales, a.volume
FROM per_product a LEFT JOIN products p ON p.product_id = a.product_id
ORDER BY a.sales DESC, a.product_id LIMIT 100""",
    },
    "/sales/by-status": {
        "marts": """WITH statuses AS (SELECT DISTINCT status_id, status FROM dim_status)
SELECT s.status_id, s.status, coalesce(a.orders, 0), coalesce(a.order_lines, 0),
       coalesce(a.units, 0), coalesce(a.sales, 0), coalesce(a.volume, 0)
FROM statuses s LEFT JOIN mart_status a ON a.status = s.status ORDER BY s.status_id""",
        "history": f"""WITH {LATEST_LINES},
statuses AS (SELECT DISTINCT status_id, status FROM dim_status),
per_status AS (
    SELECT status, count(DISTINCT order_id) AS orders, count(*) AS order_lines,
           sum(product_ccf) AS units, sum(total_price) AS sales, sum(total_volume) AS volume
    FROM latest GROUP BY status
)
SELECT s.status_id, s.status, coalesce(a.orders, 0), coalesce(a.order_lines, 0),
       coalesce(a.units, 0), coalesce(a.sales, 0), coalesce(a.volume, 0)
FROM statuses s LEFT JOIN per_status a ON a.status = s.status ORDER BY s.status_id""",
    },
    "/clients (top 10 by sales)": {
        "marts": f"""WITH {CLIENTS}, {PRODUCTS}
SELECT c.client_id, n.client_name, c.orders, c.order_lines, c.units, c.sales, c.volume,
       c.top_product_id, p.product_description, c.top_product_sales
FROM mart_clients c
LEFT JOIN clients n ON n.client_id = c.client_id
LEFT JOIN products p ON p.product_id = c.top_product_id
ORDER BY c.sales DESC, c.client_id LIMIT 10""",
        "history": f"""WITH {LATEST_LINES}, {CLIENTS}, {PRODUCTS},
per_client AS (
    SELECT client_id, count(DISTINCT order_id) AS orders, count(*) AS order_lines,
           sum(product_ccf) AS units, sum(total_price) AS sales, sum(total_volume) AS volume
    FROM latest GROUP BY client_id
),
top_product AS (
    SELECT client_id, product_id, sum(total_price) AS sales FROM latest
    GROUP BY client_id, product_id
    QUALIFY row_number() OVER (PARTITION BY client_id ORDER BY sum(total_price) DESC, product_id) = 1
)
SELECT c.client_id, n.client_name, c.orders, c.order_lines, c.units, c.sales, c.volume,
       t.product_id, p.product_description, t.sales
FROM per_client c
LEFT JOIN clients n ON n.client_id = c.client_id
LEFT JOIN top_product t ON t.client_id = c.client_id
LEFT JOIN products p ON p.product_id = t.product_id
ORDER BY c.sales DESC, c.client_id LIMIT 10""",
    },
    "/clients/{id}/orders": {
        "marts": """SELECT * FROM order_lines WHERE client_id = {client}
ORDER BY order_id, product_id LIMIT 100""",
        "history": f"""WITH mine AS (
    SELECT * FROM orders WHERE client_id = {{client}}
      AND run_id IN (SELECT run_id FROM runs WHERE status = 'succeeded')
),
newest AS (
    SELECT v.order_id, v.product_id, v.ingested_at, v.run_id FROM orders v
    SEMI JOIN mine k ON v.order_id = k.order_id AND v.product_id = k.product_id
    WHERE v.run_id IN (SELECT run_id FROM runs WHERE status = 'succeeded')
    QUALIFY row_number() OVER (PARTITION BY v.order_id, v.product_id
                               ORDER BY v.ingested_at DESC, v.run_id DESC) = 1
)
SELECT m.* FROM mine m SEMI JOIN newest n
  ON m.order_id = n.order_id AND m.product_id = n.product_id
 AND m.ingested_at = n.ingested_at AND m.run_id = n.run_id
ORDER BY order_id, product_id LIMIT 100""",
    },
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lake")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    for name, (prefix, partitioned) in TABLES.items():
        table = DeltaTable(os.path.join(args.lake, prefix))
        files = table.file_uris()
        if not files:
            con.execute(f"CREATE VIEW {name} AS SELECT NULL WHERE false")
            continue
        listed = ", ".join("'" + f.replace("file://", "") + "'" for f in files)
        hive = ", hive_partitioning = true" if partitioned else ""
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}]{hive})")
    client = con.execute(
        "SELECT client_id FROM mart_clients ORDER BY order_lines, client_id LIMIT 1 OFFSET "
        "(SELECT count(*) / 2 FROM mart_clients)"
    ).fetchone()[0]
    results = []
    for report, forms in REPORTS.items():
        row = {"report": report}
        answers = {}
        for form, sql in forms.items():
            sql = sql.replace("{client}", str(client))
            answers[form] = con.execute(sql).fetchall()  # warm-up
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                con.execute(sql).fetchall()
                times.append((time.perf_counter() - started) * 1000)
            row[form] = statistics.median(times)
        row["same"] = [tuple(map(str, r)) for r in answers["marts"]] == [
            tuple(map(str, r)) for r in answers["history"]
        ]
        results.append(row)
    print(f"DuckDB {duckdb.__version__}, {args.threads} threads, median of {args.rounds}, "
          f"load {os.getloadavg()[0]:.2f}, typical client {client}")
    print("| report | DuckDB over marts / order_lines, ms | DuckDB window over history, ms | same rows |")
    print("|---|---:|---:|---|")
    for r in results:
        print(f"| `{r['report']}` | {r['marts']:.1f} | {r['history']:.0f} | {r['same']} |")
    print(json.dumps(results), file=sys.stderr)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
