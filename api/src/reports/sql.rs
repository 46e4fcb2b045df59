//! The report SQL, written once for both backends.
//!
//! The dialect is the common subset of DataFusion and Athena (Trino): CTEs, window functions,
//! `OFFSET n LIMIT m` (in that order, which Trino requires), struct fields as `col.field`.
//! Parameters are numbered placeholders `$1`, `$2`… (DataFusion's form); for Athena the one
//! dialect shim ([`super::dialect`]) turns each into a positional `?` bound through
//! `ExecutionParameters`. Optional filters are bound as `''` and written `($n = '' OR col = $n)`,
//! so no SQL text ever depends on a request. No comments inside the SQL strings: the shim would
//! have to skip them.
//!
//! Every report over order lines reads only rows of committed runs (a `succeeded` manifest) and
//! the latest version of each order line `(order_id, product_id)`: largest `ingested_at`, then
//! largest `run_id`. `from`/`to` select the `pa_date` partitions read (so they prune files);
//! within them the latest version wins, so `to` alone gives the state as of that date.

/// Runs whose manifest says `succeeded`: the only runs whose rows are visible.
macro_rules! visible_runs {
    () => {
        "visible_runs AS (
    SELECT run_id FROM runs WHERE status = 'succeeded'
)"
    };
}

/// The latest version of every order line of visible runs in partitions `$1..=$2`, with the
/// columns the reports aggregate. Only keys with more than one version are ranked: a run holds
/// each key once, so on most lakes that is a small set, and the rest passes through without the
/// sort a window over every row costs (on the 1 GiB datagen lake, 2 cores: `/clients` went from
/// 25 s to 9.4 s, `/sales/by-product` from 13–26 s to 5.5 s; `cargo bench -p duff-api`).
macro_rules! ranked {
    () => {
        "lines AS (
    SELECT order_id, product_id, client_id, product_ccf, total_price, total_volume, status,
           point_of_sale_channel, pa_date, ingested_at, run_id
    FROM orders
    WHERE pa_date BETWEEN $1 AND $2
      AND run_id IN (SELECT run_id FROM visible_runs)
),
contested AS (
    SELECT order_id, product_id FROM lines
    GROUP BY order_id, product_id
    HAVING count(*) > 1
),
latest AS (
    SELECT l.* FROM lines l
    LEFT JOIN contested c ON c.order_id = l.order_id AND c.product_id = l.product_id
    WHERE c.order_id IS NULL
    UNION ALL
    SELECT order_id, product_id, client_id, product_ccf, total_price, total_volume, status,
           point_of_sale_channel, pa_date, ingested_at, run_id
    FROM (
        SELECT l.*,
               row_number() OVER (PARTITION BY l.order_id, l.product_id
                                  ORDER BY l.ingested_at DESC, l.run_id DESC) AS version_rank
        FROM lines l
        JOIN contested c ON c.order_id = l.order_id AND c.product_id = l.product_id
    ) r WHERE version_rank = 1
)"
    };
}

/// Like `ranked!`, for client `$3` only, without ranking the whole table: `mine` is every
/// visible version of the client's lines (all columns, a selective scan), `newest` ranks just
/// the key columns of those keys' versions (any client), and a line is shown when its newest
/// version is one of the client's. So a line whose latest version moved to another client is
/// not shown, exactly as ranking first and filtering after would do.
macro_rules! client_ranked {
    () => {
        "mine AS (
    SELECT * FROM orders
    WHERE client_id = $3 AND pa_date BETWEEN $1 AND $2
      AND run_id IN (SELECT run_id FROM visible_runs)
),
newest AS (
    SELECT order_id, product_id, ingested_at, run_id FROM (
        SELECT v.order_id, v.product_id, v.ingested_at, v.run_id,
               row_number() OVER (PARTITION BY v.order_id, v.product_id
                                  ORDER BY v.ingested_at DESC, v.run_id DESC) AS version_rank
        FROM orders v
        JOIN (SELECT DISTINCT order_id, product_id FROM mine) k
          ON v.order_id = k.order_id AND v.product_id = k.product_id
        WHERE v.pa_date BETWEEN $1 AND $2
          AND v.run_id IN (SELECT run_id FROM visible_runs)
    ) r WHERE version_rank = 1
),
latest AS (
    SELECT m.* FROM mine m
    JOIN newest n ON m.order_id = n.order_id AND m.product_id = n.product_id
                 AND m.ingested_at = n.ingested_at AND m.run_id = n.run_id
)"
    };
}

/// The latest row of a dimension per id (dimensions are written as one slice per run).
macro_rules! latest_dim {
    ($name:literal, $table:literal, $id:literal, $cols:literal) => {
        concat!(
            $name,
            " AS (
    SELECT ",
            $id,
            ", ",
            $cols,
            " FROM (
        SELECT ",
            $id,
            ", ",
            $cols,
            ",
               row_number() OVER (PARTITION BY ",
            $id,
            " ORDER BY ingested_at DESC, run_id DESC) AS version_rank
        FROM ",
            $table,
            "
        WHERE run_id IN (SELECT run_id FROM visible_runs)
    ) d WHERE version_rank = 1
)"
        )
    };
}

/// Measures of a group of latest order lines.
macro_rules! measures {
    () => {
        "count(DISTINCT order_id) AS orders,
           count(*) AS order_lines,
           sum(product_ccf) AS units,
           sum(total_price) AS sales,
           sum(total_volume) AS volume"
    };
}

/// $1 from, $2 to, $3 client_id, $4 status ('' = any), $5 offset, $6 limit.
pub const CLIENT_ORDERS: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    client_ranked!(),
    "
SELECT order_id, product_id, product_description, product_price, product_ccf, product_volume,
       total_price, total_volume, point_of_sale_channel, status, client_id, client_name,
       pa_date, ingested_at, run_id
FROM latest
WHERE ($4 = '' OR status = $4)
ORDER BY order_id, product_id
OFFSET $5 LIMIT $6"
);

/// $1 client_id. Whether the client has any visible order line at all (404 otherwise).
pub const CLIENT_EXISTS: &str = "SELECT count(*) AS order_lines FROM orders
WHERE client_id = $1 AND run_id IN (SELECT run_id FROM runs WHERE status = 'succeeded')";

/// $1 from, $2 to, $3 client_id. Legacy `status_summary` of one client: one row per status,
/// its count of order lines.
pub const CLIENT_STATUS_COUNTS: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    client_ranked!(),
    "
SELECT status, count(*) AS count
FROM latest
GROUP BY status
ORDER BY status"
);

/// $1 from, $2 to, $3 client_id, $4 offset, $5 limit. Legacy `orders_by_client`: one row
/// per order.
pub const CLIENT_ORDER_TOTALS: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    client_ranked!(),
    "
SELECT order_id,
       count(*) AS order_lines,
       sum(product_ccf) AS units,
       sum(total_price) AS sales,
       sum(total_volume) AS volume
FROM latest
GROUP BY order_id
ORDER BY order_id
OFFSET $4 LIMIT $5"
);

/// $1 from, $2 to, $3 client_id (0: every client), $4 offset, $5 limit. Legacy
/// `client_orders`: one row per client, its orders and the money it spent.
pub const LEGACY_CLIENT_TOTALS: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    ranked!(),
    "
SELECT client_id, count(DISTINCT order_id) AS total_orders, sum(total_price) AS total_spent
FROM latest
WHERE $3 = 0 OR client_id = $3
GROUP BY client_id
ORDER BY client_id
OFFSET $4 LIMIT $5"
);

/// $1 from, $2 to. Legacy `status_summary`: one row per status, its count of order lines.
pub const LEGACY_STATUS_COUNTS: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    ranked!(),
    "
SELECT status, count(*) AS count
FROM latest
GROUP BY status
ORDER BY status"
);

/// Totals per client; `$sort` is one of the fixed orderings of [`super::ClientSort`].
/// $1 from, $2 to, $3 offset, $4 limit.
macro_rules! client_totals {
    ($sort:literal) => {
        concat!(
            "WITH ",
            visible_runs!(),
            ",\n",
            ranked!(),
            ",\n",
            latest_dim!("clients", "dim_clients", "client_id", "client_name"),
            ",\n",
            latest_dim!(
                "products",
                "dim_products",
                "product_id",
                "product_description"
            ),
            ",
per_client AS (
    SELECT client_id, ",
            measures!(),
            "
    FROM latest
    GROUP BY client_id
),
per_product AS (
    SELECT client_id, product_id, sum(total_price) AS sales
    FROM latest
    GROUP BY client_id, product_id
),
top_product AS (
    SELECT client_id, product_id, sales FROM (
        SELECT client_id, product_id, sales,
               row_number() OVER (PARTITION BY client_id ORDER BY sales DESC, product_id) AS product_rank
        FROM per_product
    ) t WHERE product_rank = 1
)
SELECT c.client_id, n.client_name, c.orders, c.order_lines, c.units, c.sales, c.volume,
       t.product_id AS top_product_id, p.product_description AS top_product_description,
       t.sales AS top_product_sales
FROM per_client c
LEFT JOIN clients n ON n.client_id = c.client_id
LEFT JOIN top_product t ON t.client_id = c.client_id
LEFT JOIN products p ON p.product_id = t.product_id
ORDER BY ",
            $sort,
            ", c.client_id
OFFSET $3 LIMIT $4"
        )
    };
}

/// Totals per client, `sales` descending (ties: ascending `client_id`).
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_SALES_DESC: &str = client_totals!("c.sales DESC");
/// Totals per client, `sales` ascending (ties: ascending `client_id`).
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_SALES_ASC: &str = client_totals!("c.sales ASC");
/// Totals per client, `orders` descending (ties: ascending `client_id`).
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_ORDERS_DESC: &str = client_totals!("c.orders DESC");
/// Totals per client, `orders` ascending (ties: ascending `client_id`).
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_ORDERS_ASC: &str = client_totals!("c.orders ASC");
/// Totals per client, `units` descending (ties: ascending `client_id`).
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_UNITS_DESC: &str = client_totals!("c.units DESC");
/// Totals per client, `units` ascending (ties: ascending `client_id`).
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_UNITS_ASC: &str = client_totals!("c.units ASC");
/// Totals per client, `volume` descending (ties: ascending `client_id`).
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_VOLUME_DESC: &str = client_totals!("c.volume DESC");
/// Totals per client, `volume` ascending (ties: ascending `client_id`).
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_VOLUME_ASC: &str = client_totals!("c.volume ASC");
/// Totals per client, `client_id` descending.
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_ID_DESC: &str = client_totals!("c.client_id DESC");
/// Totals per client, `client_id` ascending.
/// $1 from, $2 to, $3 offset, $4 limit.
pub const CLIENT_TOTALS_ID_ASC: &str = client_totals!("c.client_id ASC");

/// $1 from, $2 to, $3 offset, $4 limit. `orders` = order lines: a key is one product of one order.
pub const SALES_BY_PRODUCT: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    ranked!(),
    ",\n",
    latest_dim!(
        "products",
        "dim_products",
        "product_id",
        "product_description"
    ),
    ",
per_product AS (
    SELECT product_id, ",
    measures!(),
    "
    FROM latest
    GROUP BY product_id
)
SELECT a.product_id, p.product_description, a.orders, a.units, a.sales, a.volume
FROM per_product a
LEFT JOIN products p ON p.product_id = a.product_id
ORDER BY a.sales DESC, a.product_id
OFFSET $3 LIMIT $4"
);

/// $1 from, $2 to, $3 offset, $4 limit. Every status of `dim_status`, zero when unused.
pub const SALES_BY_STATUS: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    ranked!(),
    ",
statuses AS (
    SELECT DISTINCT status_id, status FROM dim_status
),
per_status AS (
    SELECT status, ",
    measures!(),
    "
    FROM latest
    GROUP BY status
)
SELECT s.status_id, s.status,
       COALESCE(a.orders, 0) AS orders,
       COALESCE(a.order_lines, 0) AS order_lines,
       COALESCE(a.units, 0) AS units,
       COALESCE(a.sales, CAST(0 AS DECIMAL(18, 4))) AS sales,
       COALESCE(a.volume, CAST(0 AS DECIMAL(18, 4))) AS volume
FROM statuses s
LEFT JOIN per_status a ON a.status = s.status
ORDER BY s.status_id
OFFSET $3 LIMIT $4"
);

/// $1 from, $2 to, $3 offset, $4 limit. Every channel of `dim_channels`, zero when unused.
pub const SALES_BY_CHANNEL: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    ranked!(),
    ",
channels AS (
    SELECT DISTINCT channel_id, channel FROM dim_channels
),
per_channel AS (
    SELECT point_of_sale_channel, ",
    measures!(),
    "
    FROM latest
    GROUP BY point_of_sale_channel
)
SELECT c.channel_id, c.channel,
       COALESCE(a.orders, 0) AS orders,
       COALESCE(a.order_lines, 0) AS order_lines,
       COALESCE(a.units, 0) AS units,
       COALESCE(a.sales, CAST(0 AS DECIMAL(18, 4))) AS sales,
       COALESCE(a.volume, CAST(0 AS DECIMAL(18, 4))) AS volume
FROM channels c
LEFT JOIN per_channel a ON a.point_of_sale_channel = c.channel
ORDER BY c.channel_id
OFFSET $3 LIMIT $4"
);

/// $1 from, $2 to, $3 offset, $4 limit. A day is a `pa_date` partition.
pub const SALES_BY_DAY: &str = concat!(
    "WITH ",
    visible_runs!(),
    ",\n",
    ranked!(),
    "
SELECT pa_date, point_of_sale_channel AS channel, ",
    measures!(),
    "
FROM latest
GROUP BY pa_date, point_of_sale_channel
ORDER BY pa_date, channel
OFFSET $3 LIMIT $4"
);

/// The columns of a run shown in lists.
macro_rules! run_columns {
    () => {
        "run_id, status, error_code, error, source.uri AS source_uri, pa_date, ingested_at,
       started_at, finished_at,
       counts.rows_read AS rows_read,
       counts.rows_written AS rows_written,
       counts.exact_duplicates AS exact_duplicates,
       counts.quarantined AS quarantined,
       counts.quarantined_by_reason AS quarantined_by_reason,
       counts.blank_lines AS blank_lines,
       nothing_lost, input_bytes, output_bytes"
    };
}

/// When the current state (`order_lines` and the marts) took the run in: its latest row in
/// `folds`, NULL until then (and for a failed run, which has nothing to fold).
macro_rules! runs_with_folds {
    () => {
        "
FROM runs
LEFT JOIN (SELECT run_id AS folded_run, max(folded_at) AS folded_at FROM folds GROUP BY run_id) f
  ON f.folded_run = runs.run_id"
    };
}

/// $1 from, $2 to (the run's pa_date), $3 status ('' = any), $4 offset, $5 limit. Newest first.
pub const RUNS: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", folded_at",
    runs_with_folds!(),
    "
WHERE pa_date BETWEEN $1 AND $2 AND ($3 = '' OR status = $3)
ORDER BY started_at DESC, run_id DESC
OFFSET $4 LIMIT $5"
);

/// $1 run_id. Every column of one run.
pub const RUN: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", folded_at,
       source.size_bytes AS source_size_bytes,
       source.version AS source_version,
       source.gzip AS source_gzip,
       counts.distinct_clients AS distinct_clients,
       counts.distinct_products AS distinct_products,
       engine_version, threads, extra_columns",
    runs_with_folds!(),
    "
WHERE run_id = $1"
);

/// $1 run_id, $2 reason ('' = any), $3 offset, $4 limit. Only committed runs' rows; a raw
/// text longer than 1024 characters is cut there (`raw_text_truncated`): a record may hold up to
/// `--max-record-bytes`, and a page must stay small. [`RUN_QUARANTINE_LINE`] has the whole text.
pub const RUN_QUARANTINE: &str = "SELECT source_line, reason, detail, \
substr(raw_text, 1, 1024) AS raw_text, length(raw_text) > 1024 AS raw_text_truncated, kept_line, \
source_file, pa_date, run_id
FROM quarantine
WHERE run_id = $1 AND ($2 = '' OR reason = $2)
  AND run_id IN (SELECT run_id FROM runs WHERE status = 'succeeded')
ORDER BY source_line, reason
OFFSET $3 LIMIT $4";

/// $1 run_id, $2 source_line. The quarantined rows of one line (one per reason), with their
/// whole raw text (at most `--max-record-bytes` each).
pub const RUN_QUARANTINE_LINE: &str = "SELECT source_line, reason, detail, raw_text, \
false AS raw_text_truncated, kept_line, source_file, pa_date, run_id
FROM quarantine
WHERE run_id = $1 AND source_line = $2
  AND run_id IN (SELECT run_id FROM runs WHERE status = 'succeeded')
ORDER BY reason";

/// 1 when every committed run is recorded in `folds` (the current state and the marts hold
/// them all), else 0. A backend that cannot read the tables' logs (Athena) asks this before
/// reading the marts: `folds` gets a run's row only after its marts commit.
pub const EVERY_RUN_FOLDED: &str = "SELECT CASE WHEN
  (SELECT count(*) FROM runs WHERE status = 'succeeded')
  = (SELECT count(DISTINCT run_id) FROM folds)
THEN 1 ELSE 0 END AS every_run_folded";
