//! Marts: small aggregates of the current state (`order_lines`), kept exact at every fold, so
//! a report reads a few thousand rows instead of ranking the history.
//!
//! Every mart has one row per group with the same measures: `orders` (distinct `order_id`),
//! `order_lines`, `units` (sum of `product_ccf`), `sales` and `volume` (sums of `total_price`
//! and `total_volume`, DECIMAL(38,4)). A group with no current line has no row.
//!
//! A fold changes the current state of a few orders only: those with a line the run adds or
//! supersedes. Every measure of a mart is a sum over orders of what each order contributes
//! (its lines' sums, and 1 to `orders` per group it has a line in), so the fold adds, for
//! each changed order, its contribution after the fold minus its contribution before
//! ([`Marts::apply_order`]). That needs every current line of a changed order, which the fold
//! finds in the `order_lines` files it reads anyway: their key ranges hold the order.
//!
//! The marts are rewritten whole at each fold and carry the `order_lines` version they
//! reflect as a Delta `txn`; a fold that finds them behind (a crash between the two commits,
//! or a lake from before marts) rebuilds them from `order_lines` first ([`store`]).

mod lines;
pub(crate) mod store;

use duff_engine::schema::{Column, ColumnType::*, Table, col};
use hashbrown::HashMap;

use crate::tables::DeltaTableDef;

pub(crate) use lines::{LineSource, Side, stream_orders};

const MEASURES: [Column; 5] = [
    col("orders", BigInt),
    col("order_lines", BigInt),
    col("units", BigInt),
    col("sales", DecimalSum),
    col("volume", DecimalSum),
];

macro_rules! with_measures {
    ($($c:expr),* $(,)?) => {
        &[$($c,)* MEASURES[0], MEASURES[1], MEASURES[2], MEASURES[3], MEASURES[4]]
    };
}

/// Per client, with the product of the client's largest sales (ties: smallest product id).
pub static CLIENTS: Table = Table {
    name: "mart_clients",
    prefix: "marts/clients",
    columns: &[
        col("client_id", BigInt),
        MEASURES[0],
        MEASURES[1],
        MEASURES[2],
        MEASURES[3],
        MEASURES[4],
        col("top_product_id", BigInt),
        col("top_product_sales", DecimalSum),
    ],
};

/// Per client and product.
pub static CLIENT_PRODUCTS: Table = Table {
    name: "mart_client_products",
    prefix: "marts/client_products",
    columns: with_measures![col("client_id", BigInt), col("product_id", BigInt)],
};

/// Per product.
pub static PRODUCTS: Table = Table {
    name: "mart_products",
    prefix: "marts/products",
    columns: with_measures![col("product_id", BigInt)],
};

/// Per status.
pub static STATUSES: Table = Table {
    name: "mart_status",
    prefix: "marts/status",
    columns: with_measures![col("status", String)],
};

/// Per point-of-sale channel.
pub static CHANNELS: Table = Table {
    name: "mart_channels",
    prefix: "marts/channels",
    columns: with_measures![col("channel", String)],
};

/// Per day (the `pa_date` of the lines' current version) and channel.
pub static DAILY_CHANNELS: Table = Table {
    name: "mart_daily_channels",
    prefix: "marts/daily_channels",
    columns: with_measures![col("pa_date", String), col("channel", String)],
};

/// Per client and status.
pub static CLIENT_STATUSES: Table = Table {
    name: "mart_client_status",
    prefix: "marts/client_status",
    columns: with_measures![col("client_id", BigInt), col("status", String)],
};

const fn mart(table: &'static Table) -> DeltaTableDef {
    DeltaTableDef {
        name: table.name,
        prefix: table.prefix,
        engine_table: Some(table),
        partitioned: false,
    }
}

/// Every mart, as Delta tables (not partitioned: each is small).
pub static MARTS: [DeltaTableDef; 7] = [
    mart(&CLIENTS),
    mart(&CLIENT_PRODUCTS),
    mart(&PRODUCTS),
    mart(&STATUSES),
    mart(&CHANNELS),
    mart(&DAILY_CHANNELS),
    mart(&CLIENT_STATUSES),
];

/// The measures of a group of order lines. Money and volumes in units of 10⁻⁴.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Measures {
    pub orders: i64,
    pub order_lines: i64,
    pub units: i64,
    pub sales: i128,
    pub volume: i128,
}

impl Measures {
    fn add_line(&mut self, sign: i64, line: &Line) {
        self.order_lines += sign;
        self.units += sign * line.units;
        self.sales += i128::from(sign) * line.sales;
        self.volume += i128::from(sign) * line.volume;
    }
}

/// One current order line, reduced to what the marts group and sum. Strings are interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    pub order: i64,
    pub client: i64,
    pub product: i64,
    pub status: u32,
    pub channel: u32,
    pub day: u32,
    pub units: i64,
    pub sales: i128,
    pub volume: i128,
}

/// Strings of few distinct values (statuses, channels, days) as small integers.
#[derive(Debug, Default, Clone)]
pub(crate) struct Names {
    ids: HashMap<std::string::String, u32>,
    names: Vec<std::string::String>,
}

impl Names {
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// Every mart, in memory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Marts {
    pub(crate) clients: HashMap<i64, Measures>,
    pub(crate) client_products: HashMap<(i64, i64), Measures>,
    pub(crate) products: HashMap<i64, Measures>,
    pub(crate) statuses: HashMap<u32, Measures>,
    pub(crate) channels: HashMap<u32, Measures>,
    pub(crate) daily_channels: HashMap<(u32, u32), Measures>,
    pub(crate) client_statuses: HashMap<(i64, u32), Measures>,
}

/// Reused buffers for the distinct groups of one order.
#[derive(Default)]
pub(crate) struct Scratch {
    ints: Vec<i64>,
    pairs: Vec<(i64, i64)>,
    small: Vec<u32>,
    small_pairs: Vec<(u32, u32)>,
    mixed: Vec<(i64, u32)>,
}

impl Marts {
    /// Adds `sign` × the contribution of one order's lines: their sums to each group, and
    /// ±1 to `orders` once per group the order has a line in.
    pub(crate) fn apply_order(&mut self, sign: i64, lines: &[Line], s: &mut Scratch) {
        if lines.is_empty() {
            return;
        }
        for l in lines {
            self.clients.entry(l.client).or_default().add_line(sign, l);
            self.client_products
                .entry((l.client, l.product))
                .or_default()
                .add_line(sign, l);
            self.products
                .entry(l.product)
                .or_default()
                .add_line(sign, l);
            self.statuses.entry(l.status).or_default().add_line(sign, l);
            self.channels
                .entry(l.channel)
                .or_default()
                .add_line(sign, l);
            self.daily_channels
                .entry((l.day, l.channel))
                .or_default()
                .add_line(sign, l);
            self.client_statuses
                .entry((l.client, l.status))
                .or_default()
                .add_line(sign, l);
        }
        count_distinct(
            &mut s.ints,
            lines,
            |l| l.client,
            |k| self.clients.entry(k).or_default().orders += sign,
        );
        count_distinct(
            &mut s.pairs,
            lines,
            |l| (l.client, l.product),
            |k| self.client_products.entry(k).or_default().orders += sign,
        );
        count_distinct(
            &mut s.ints,
            lines,
            |l| l.product,
            |k| self.products.entry(k).or_default().orders += sign,
        );
        count_distinct(
            &mut s.small,
            lines,
            |l| l.status,
            |k| self.statuses.entry(k).or_default().orders += sign,
        );
        count_distinct(
            &mut s.small,
            lines,
            |l| l.channel,
            |k| self.channels.entry(k).or_default().orders += sign,
        );
        count_distinct(
            &mut s.small_pairs,
            lines,
            |l| (l.day, l.channel),
            |k| self.daily_channels.entry(k).or_default().orders += sign,
        );
        count_distinct(
            &mut s.mixed,
            lines,
            |l| (l.client, l.status),
            |k| self.client_statuses.entry(k).or_default().orders += sign,
        );
    }

    /// Drops the groups left without a line.
    pub(crate) fn prune(&mut self) {
        let live = |m: &mut Measures| m.order_lines != 0;
        self.clients.retain(|_, m| live(m));
        self.client_products.retain(|_, m| live(m));
        self.products.retain(|_, m| live(m));
        self.statuses.retain(|_, m| live(m));
        self.channels.retain(|_, m| live(m));
        self.daily_channels.retain(|_, m| live(m));
        self.client_statuses.retain(|_, m| live(m));
    }

    /// Each client's product with the largest sales (ties: the smallest product id).
    pub(crate) fn top_products(&self) -> HashMap<i64, (i64, i128)> {
        let mut top: HashMap<i64, (i64, i128)> = HashMap::with_capacity(self.clients.len());
        for (&(client, product), m) in &self.client_products {
            let better = |&(p, s): &(i64, i128)| (m.sales, -product) > (s, -p);
            match top.get_mut(&client) {
                Some(best) if better(best) => *best = (product, m.sales),
                Some(_) => {}
                None => {
                    top.insert(client, (product, m.sales));
                }
            }
        }
        top
    }
}

/// Calls `each` once per distinct `key` of `lines` (a handful: the lines of one order).
fn count_distinct<K: Ord + Copy>(
    buf: &mut Vec<K>,
    lines: &[Line],
    key: impl Fn(&Line) -> K,
    mut each: impl FnMut(K),
) {
    buf.clear();
    buf.extend(lines.iter().map(key));
    buf.sort_unstable();
    buf.dedup();
    for k in buf.iter() {
        each(*k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(order: i64, client: i64, product: i64, status: u32, sales: i128) -> Line {
        Line {
            order,
            client,
            product,
            status,
            channel: 0,
            day: 0,
            units: 2,
            sales,
            volume: 1,
        }
    }

    #[test]
    fn an_order_counts_once_per_group_and_its_lines_each() {
        let mut marts = Marts::default();
        let mut s = Scratch::default();
        let order = [
            line(1, 7, 10, 0, 5),
            line(1, 7, 11, 0, 6),
            line(1, 7, 12, 1, 7),
        ];
        marts.apply_order(1, &order, &mut s);
        let c = marts.clients[&7];
        assert_eq!((c.orders, c.order_lines, c.units, c.sales), (1, 3, 6, 18));
        assert_eq!(marts.statuses[&0].orders, 1);
        assert_eq!(marts.statuses[&0].order_lines, 2);
        assert_eq!(marts.statuses[&1].orders, 1);
        assert_eq!(marts.products[&10].orders, 1);
        assert_eq!(marts.top_products()[&7], (12, 7));
    }

    #[test]
    fn after_minus_before_is_the_new_state() {
        // Order 1 moves one line from client 7 to client 8; the state equals a fresh build.
        let before = [line(1, 7, 10, 0, 5), line(1, 7, 11, 0, 6)];
        let after = [line(1, 7, 10, 0, 5), line(1, 8, 11, 1, 9)];
        let mut s = Scratch::default();
        let mut folded = Marts::default();
        folded.apply_order(1, &before, &mut s);
        folded.apply_order(-1, &before, &mut s);
        folded.apply_order(1, &after, &mut s);
        folded.prune();
        let mut fresh = Marts::default();
        fresh.apply_order(1, &after, &mut s);
        assert_eq!(folded, fresh);
        assert_eq!(folded.clients.len(), 2);
    }

    #[test]
    fn top_product_ties_go_to_the_smallest_id() {
        let mut marts = Marts::default();
        let mut s = Scratch::default();
        marts.apply_order(1, &[line(1, 7, 12, 0, 5), line(1, 7, 11, 0, 5)], &mut s);
        assert_eq!(marts.top_products()[&7], (11, 5));
    }
}
