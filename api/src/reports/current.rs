//! The reports answered from the current state (`order_lines`) and its marts instead of the
//! history: the same columns, rows and order as their history form (in [`super::sql`]) over
//! every partition, which is what a request without `from`/`to` asks. Each reads a few
//! thousand mart rows, or one client's lines, instead of ranking every version of every line.
//! Names come from the current dimensions (`dim_clients_current`, `dim_products_current`): the
//! latest version of each, as the history form ranks them.

/// $1 offset, $2 limit.
pub const SALES_BY_PRODUCT: &str =
    "SELECT a.product_id, p.product_description, a.orders, a.units, a.sales, a.volume
FROM mart_products a
LEFT JOIN dim_products_current p ON p.product_id = a.product_id
ORDER BY a.sales DESC, a.product_id
OFFSET $1 LIMIT $2";

/// The measures of a mart row, zero for a group without lines.
macro_rules! measures_or_zero {
    () => {
        "COALESCE(a.orders, 0) AS orders,
       COALESCE(a.order_lines, 0) AS order_lines,
       COALESCE(a.units, 0) AS units,
       COALESCE(a.sales, CAST(0 AS DECIMAL(38, 4))) AS sales,
       COALESCE(a.volume, CAST(0 AS DECIMAL(38, 4))) AS volume"
    };
}

/// $1 offset, $2 limit. Every status of `dim_status`, zero when unused.
pub const SALES_BY_STATUS: &str = concat!(
    "WITH statuses AS (
    SELECT DISTINCT status_id, status FROM dim_status
)
SELECT s.status_id, s.status, ",
    measures_or_zero!(),
    "
FROM statuses s
LEFT JOIN mart_status a ON a.status = s.status
ORDER BY s.status_id
OFFSET $1 LIMIT $2"
);

/// $1 offset, $2 limit. Every channel of `dim_channels`, zero when unused.
pub const SALES_BY_CHANNEL: &str = concat!(
    "WITH channels AS (
    SELECT DISTINCT channel_id, channel FROM dim_channels
)
SELECT c.channel_id, c.channel, ",
    measures_or_zero!(),
    "
FROM channels c
LEFT JOIN mart_channels a ON a.channel = c.channel
ORDER BY c.channel_id
OFFSET $1 LIMIT $2"
);

/// $1 offset, $2 limit.
pub const SALES_BY_DAY: &str = "SELECT pa_date, channel, orders, order_lines, units, sales, volume
FROM mart_daily_channels
ORDER BY pa_date, channel
OFFSET $1 LIMIT $2";

/// Totals per client from `mart_clients`; `$sort` as in the history form. $1 offset, $2 limit.
macro_rules! client_totals {
    ($sort:literal) => {
        concat!(
            "SELECT c.client_id, n.client_name, c.orders, c.order_lines, c.units, c.sales, c.volume,
       c.top_product_id, p.product_description AS top_product_description,
       c.top_product_sales
FROM mart_clients c
LEFT JOIN dim_clients_current n ON n.client_id = c.client_id
LEFT JOIN dim_products_current p ON p.product_id = c.top_product_id
ORDER BY ",
            $sort,
            ", c.client_id
OFFSET $1 LIMIT $2"
        )
    };
}

/// Totals per client from `mart_clients`, `sales` descending (ties: ascending `client_id`).
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_SALES_DESC: &str = client_totals!("c.sales DESC");
/// Totals per client from `mart_clients`, `sales` ascending (ties: ascending `client_id`).
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_SALES_ASC: &str = client_totals!("c.sales ASC");
/// Totals per client from `mart_clients`, `orders` descending (ties: ascending `client_id`).
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_ORDERS_DESC: &str = client_totals!("c.orders DESC");
/// Totals per client from `mart_clients`, `orders` ascending (ties: ascending `client_id`).
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_ORDERS_ASC: &str = client_totals!("c.orders ASC");
/// Totals per client from `mart_clients`, `units` descending (ties: ascending `client_id`).
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_UNITS_DESC: &str = client_totals!("c.units DESC");
/// Totals per client from `mart_clients`, `units` ascending (ties: ascending `client_id`).
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_UNITS_ASC: &str = client_totals!("c.units ASC");
/// Totals per client from `mart_clients`, `volume` descending (ties: ascending `client_id`).
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_VOLUME_DESC: &str = client_totals!("c.volume DESC");
/// Totals per client from `mart_clients`, `volume` ascending (ties: ascending `client_id`).
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_VOLUME_ASC: &str = client_totals!("c.volume ASC");
/// Totals per client from `mart_clients`, `client_id` descending.
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_ID_DESC: &str = client_totals!("c.client_id DESC");
/// Totals per client from `mart_clients`, `client_id` ascending.
/// $1 offset, $2 limit.
pub const CLIENT_TOTALS_ID_ASC: &str = client_totals!("c.client_id ASC");

/// $1 client_id, $2 status ('' = any), $3 offset, $4 limit.
pub const CLIENT_ORDERS: &str = "SELECT order_id, product_id, product_description, product_price,
       product_ccf, product_volume, total_price, total_volume, point_of_sale_channel, status,
       client_id, client_name, pa_date, ingested_at, run_id
FROM order_lines
WHERE client_id = $1 AND ($2 = '' OR status = $2)
ORDER BY order_id, product_id
OFFSET $3 LIMIT $4";

/// $1 client_id. Legacy `status_summary` of one client: one row per status, its count of
/// order lines.
pub const CLIENT_STATUS_COUNTS: &str = "SELECT status, order_lines AS count
FROM mart_client_status
WHERE client_id = $1
ORDER BY status";

/// $1 client_id, $2 offset, $3 limit. Legacy `orders_by_client`: one row per order.
pub const CLIENT_ORDER_TOTALS: &str = "SELECT order_id,
       count(*) AS order_lines,
       sum(product_ccf) AS units,
       sum(total_price) AS sales,
       sum(total_volume) AS volume
FROM order_lines
WHERE client_id = $1
GROUP BY order_id
ORDER BY order_id
OFFSET $2 LIMIT $3";

/// $1 client_id (0: every client), $2 offset, $3 limit. Legacy `client_orders`: one row per
/// client, its orders and the money it spent.
pub const LEGACY_CLIENT_TOTALS: &str =
    "SELECT client_id, orders AS total_orders, sales AS total_spent
FROM mart_clients
WHERE $1 = 0 OR client_id = $1
ORDER BY client_id
OFFSET $2 LIMIT $3";

/// Legacy `status_summary`: one row per status, its count of order lines.
pub const LEGACY_STATUS_COUNTS: &str = "SELECT status, order_lines AS count
FROM mart_status
ORDER BY status";
