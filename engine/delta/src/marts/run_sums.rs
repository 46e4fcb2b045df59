//! The marts of one run's rows, summed as the engine writes them ([`super::observe`]): lean,
//! since it runs beside the engine on the same cores. A run's sums fit 64 bits (checked),
//! the client × product key packs into one word, and the marts of few groups (statuses,
//! channels) are arrays. A run has one day, so its per-day-and-channel mart is its
//! per-channel mart. A client's sums per status are kept together ([`ClientSums`]), so an
//! order updates one entry, and its per-client mart is summed from them at the end: an order
//! counts once per group it has a line in, so a client's orders are its orders per status
//! less those counted under several statuses (`repeats`).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Int32Type, Int64Type};

use super::groups::Groups;
use super::measures::{Measures, Names};
use super::pair_sums::{PairLine, PairSums, pair_key};
use super::sums::{Marts, SMALL_ORDER};

/// The sums of a run's lines in one group.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sums {
    orders: u32,
    lines: u32,
    units: i64,
    sales: i64,
    volume: i64,
}

impl Sums {
    /// Adds a line (and, when `new_order`, its order); `None` on overflow.
    #[inline]
    fn add(&mut self, new_order: bool, line: &OrderLine) -> Option<()> {
        self.orders = self.orders.checked_add(u32::from(new_order))?;
        self.lines = self.lines.checked_add(1)?;
        self.units = self.units.checked_add(line.units)?;
        self.sales = self.sales.checked_add(line.sales)?;
        self.volume = self.volume.checked_add(line.volume)?;
        Some(())
    }

    /// Adds another group's sums; `None` on overflow.
    fn merge(&mut self, other: &Sums) -> Option<()> {
        self.orders = self.orders.checked_add(other.orders)?;
        self.lines = self.lines.checked_add(other.lines)?;
        self.units = self.units.checked_add(other.units)?;
        self.sales = self.sales.checked_add(other.sales)?;
        self.volume = self.volume.checked_add(other.volume)?;
        Some(())
    }

    fn is_empty(&self) -> bool {
        self.lines == 0
    }

    fn measures(self) -> Measures {
        Measures {
            orders: self.orders.into(),
            order_lines: self.lines.into(),
            units: self.units,
            sales: self.sales.into(),
            volume: self.volume.into(),
        }
    }
}

/// Statuses a run may have: each has a slot in a client's sums. The engine accepts three
/// (`duff_engine::parse::rules::STATUSES`); a run with more is left to the fold.
const STATUS_SLOTS: usize = 4;

/// A client's sums in a run, per status slot, and the orders they count more than once
/// (under several of the client's statuses): its per-client sums are their sum less those.
#[derive(Debug, Default, Clone, Copy)]
struct ClientSums {
    statuses: [Sums; STATUS_SLOTS],
    repeats: u32,
}

/// What the per-order marts need of a line.
#[derive(Debug, Clone, Copy)]
struct OrderLine {
    client: i64,
    /// The status's slot.
    status: u32,
    channel: u32,
    units: i64,
    sales: i64,
    volume: i64,
}

/// Why a run's rows cannot be summed here; the fold then reads its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsummable(pub String);

/// The sums of one run's rows, by mart.
#[derive(Debug, Default)]
pub(crate) struct RunSums {
    /// Per product too: a product's sums are those of its client × product groups.
    client_products: PairSums,
    /// A batch's client × product lines, added together (kept to be reused).
    pair_lines: Vec<PairLine>,
    clients: Groups<i64, ClientSums>,
    /// By status slot, and by interned channel.
    statuses: Vec<Sums>,
    channels: Vec<Sums>,
    /// The interned status of each slot.
    status_names: Vec<u32>,
    /// Interned statuses and channels.
    pub names: Names,
    /// The order being read and its lines so far (it may go on in the next rows).
    order: Option<i64>,
    order_lines: Vec<OrderLine>,
    pub rows: u64,
}

impl RunSums {
    /// Adds the rows of `batch` (columns of the `orders` schema), which follow the rows added
    /// before in the file.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), Unsummable> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Unsummable(format!("no column {name}")))
        };
        let orders = column("order_id")?.as_primitive::<Int64Type>().values();
        let clients = column("client_id")?.as_primitive::<Int64Type>().values();
        let products = column("product_id")?.as_primitive::<Int64Type>().values();
        let units = column("product_ccf")?.as_primitive::<Int64Type>().values();
        let sales = column("total_price")?.as_primitive::<Decimal128Type>();
        let volumes = column("total_volume")?.as_primitive::<Decimal128Type>();
        let statuses = self.interned(column("status")?, Self::status_slot)?;
        let channels = self.interned(column("point_of_sale_channel")?, |_, id| Ok(id))?;
        if sales.null_count() + volumes.null_count() > 0 {
            return Err(Unsummable("a null total".into()));
        }
        let (sales, volumes) = (sales.values(), volumes.values());
        let packed = |i: usize| {
            pair_key(clients[i], products[i]).ok_or_else(|| {
                let (c, p) = (clients[i], products[i]);
                Unsummable(format!("ids that do not fit 32 bits: {c}, {p}"))
            })
        };
        let overflow = || Unsummable("a sum wider than 64 bits".into());
        self.pair_lines.clear();
        for i in 0..batch.num_rows() {
            let order = orders[i];
            match self.order {
                Some(o) if o == order => {}
                Some(o) if o > order => {
                    return Err(Unsummable(
                        "order ids decrease: an order's lines may be apart".into(),
                    ));
                }
                _ => {
                    self.close_order().ok_or_else(overflow)?;
                    self.order = Some(order);
                    // The order's client is added to when it closes, a few lines on.
                    self.clients.prefetch(&clients[i]);
                }
            }
            let narrow = |v: i128| i64::try_from(v).map_err(|_| overflow());
            let line = OrderLine {
                client: clients[i],
                status: statuses[i],
                channel: channels[i],
                units: units[i],
                sales: narrow(sales[i])?,
                volume: narrow(volumes[i])?,
            };
            // An order has one line per product: each line counts its order once here.
            self.pair_lines.push(PairLine {
                key: packed(i)?,
                units: line.units,
                sales: line.sales,
                volume: line.volume,
            });
            self.order_lines.push(line);
            self.rows += 1;
        }
        self.client_products
            .add_lines(&self.pair_lines)
            .ok_or_else(overflow)
    }

    /// The ids of a string column's values, interned (dictionary-encoded, as the engine
    /// writes them, or plain), each passed through `then` (once per dictionary value).
    fn interned(
        &mut self,
        array: &dyn Array,
        mut then: impl FnMut(&mut Self, u32) -> Result<u32, Unsummable>,
    ) -> Result<Vec<u32>, Unsummable> {
        if let DataType::Dictionary(key, _) = array.data_type()
            && **key == DataType::Int32
        {
            let dict = array.as_dictionary::<Int32Type>();
            let values = dict.values().as_string_opt::<i32>();
            let values = values.ok_or_else(|| Unsummable("a dictionary of non-strings".into()))?;
            let ids = (0..values.len())
                .map(|i| {
                    let id = self.names.id(values.value(i));
                    then(self, id)
                })
                .collect::<Result<Vec<u32>, _>>()?;
            return Ok(dict
                .keys()
                .values()
                .iter()
                .map(|k| ids[*k as usize])
                .collect());
        }
        let strings = array
            .as_string_opt::<i32>()
            .ok_or_else(|| Unsummable(format!("a {} string column", array.data_type())))?;
        (0..strings.len())
            .map(|i| {
                let id = self.names.id(strings.value(i));
                then(self, id)
            })
            .collect()
    }

    /// The slot of interned status `id`, given one when it is new.
    fn status_slot(&mut self, id: u32) -> Result<u32, Unsummable> {
        if let Some(slot) = self.status_names.iter().position(|&s| s == id) {
            return Ok(slot as u32);
        }
        if self.status_names.len() == STATUS_SLOTS {
            return Err(Unsummable(format!("more than {STATUS_SLOTS} statuses")));
        }
        self.status_names.push(id);
        Ok(self.status_names.len() as u32 - 1)
    }

    /// Adds the order being read to the per-order marts; `None` on overflow.
    fn close_order(&mut self) -> Option<()> {
        let lines = std::mem::take(&mut self.order_lines);
        if !lines.is_empty() {
            add_to_clients(&lines, &mut self.clients)?;
            add_order(&lines, |l| l.status, &mut self.statuses)?;
            add_order(&lines, |l| l.channel, &mut self.channels)?;
        }
        self.order_lines = lines;
        self.order_lines.clear();
        Some(())
    }

    /// Every row added: the marts of the run, whose lines all fall on `day` (interned in
    /// `names` with the statuses and channels).
    pub fn finish(mut self, day: &str) -> Result<(Marts, Names), Unsummable> {
        self.close_order()
            .ok_or_else(|| Unsummable("a sum wider than 64 bits".into()))?;
        let mut names = self.names;
        let day = names.id(day);
        let dense = |ids: &mut dyn Iterator<Item = u32>, sums: &[Sums]| -> Groups<u32> {
            ids.zip(sums)
                .filter(|(_, s)| !s.is_empty())
                .map(|(k, s)| (k, s.measures()))
                .collect()
        };
        let status_names = &self.status_names;
        let mut client_products = Groups::default();
        client_products.reserve(self.client_products.len());
        // Most of a run's finish, alone on a core once the engine is done: on every core.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pairs = &self.client_products;
        client_products.insert_new(|shard| pairs.shard_groups(shard), threads);
        let products = std::thread::scope(|scope| {
            let parts: Vec<_> = pairs
                .parts(threads)
                .map(|part| scope.spawn(|| part.map(|(key, m)| (key.1, m)).collect()))
                .collect();
            let mut products = Groups::<i64>::default();
            for part in parts {
                let part: Groups<i64> = part.join().expect("summing does not panic");
                products.add(part);
            }
            products
        });
        let clients = per_client(&self.clients)
            .ok_or_else(|| Unsummable("a sum wider than 64 bits".into()))?;
        let client_statuses = self
            .clients
            .iter()
            .flat_map(|(&client, sums)| {
                let slots = status_names.iter().zip(&sums.statuses);
                slots
                    .filter(|(_, s)| !s.is_empty())
                    .map(move |(&status, s)| ((client, status), s.measures()))
            })
            .collect();
        let marts = Marts {
            clients,
            client_products,
            products,
            statuses: dense(&mut status_names.iter().copied(), &self.statuses),
            channels: dense(&mut (0u32..), &self.channels),
            daily_channels: dense(&mut (0u32..), &self.channels)
                .into_iter()
                .map(|(c, m)| ((day, c), m))
                .collect(),
            client_statuses,
        };
        Ok((marts, names))
    }
}

/// Adds an order's lines to its clients' sums per status: the order counts once under each
/// status it has a line of, and each status past the first is a repeat; `None` on overflow.
fn add_to_clients(lines: &[OrderLine], clients: &mut Groups<i64, ClientSums>) -> Option<()> {
    let client = lines[0].client;
    if lines.iter().all(|l| l.client == client) {
        return add_to_client(lines.iter(), clients.entry(client));
    }
    // Lines of several clients (not an order's usual shape): each client's in turn.
    let mut by_client: Vec<&OrderLine> = lines.iter().collect();
    by_client.sort_by_key(|l| l.client);
    for same in by_client.chunk_by(|a, b| a.client == b.client) {
        add_to_client(same.iter().copied(), clients.entry(same[0].client))?;
    }
    Some(())
}

/// [`add_to_clients`] for one client's lines of an order.
fn add_to_client<'a>(
    lines: impl Iterator<Item = &'a OrderLine>,
    sums: &mut ClientSums,
) -> Option<()> {
    let mut seen = 0u32;
    for l in lines {
        let slot = 1 << l.status;
        sums.statuses[l.status as usize].add(seen & slot == 0, l)?;
        seen |= slot;
    }
    sums.repeats = sums.repeats.checked_add(seen.count_ones() - 1)?;
    Some(())
}

/// The per-client sums: those of the client's statuses, less the orders they repeat;
/// `None` on overflow.
fn per_client(clients: &Groups<i64, ClientSums>) -> Option<Groups<i64>> {
    clients
        .iter()
        .map(|(&client, sums)| {
            let mut total = Sums::default();
            for s in &sums.statuses {
                total.merge(s)?;
            }
            total.orders = total.orders.checked_sub(sums.repeats)?;
            Some((client, total.measures()))
        })
        .collect()
}

/// The sums of group `key` of a mart of few groups, kept by index.
#[inline]
fn group(mart: &mut Vec<Sums>, key: u32) -> &mut Sums {
    let k = key as usize;
    if mart.len() <= k {
        mart.resize(k + 1, Sums::default());
    }
    &mut mart[k]
}

/// Adds one order's lines to the mart grouped by `key`: the order counts once in each group
/// it has a line in (as [`super::Marts::apply`] counts it).
fn add_order(
    lines: &[OrderLine],
    key: impl Fn(&OrderLine) -> u32,
    mart: &mut Vec<Sums>,
) -> Option<()> {
    let first = key(&lines[0]);
    if lines.iter().all(|l| key(l) == first) {
        let sums = group(mart, first);
        for (i, l) in lines.iter().enumerate() {
            sums.add(i == 0, l)?;
        }
        return Some(());
    }
    if lines.len() <= SMALL_ORDER {
        for (i, l) in lines.iter().enumerate() {
            let k = key(l);
            let new = !lines[..i].iter().any(|e| key(e) == k);
            group(mart, k).add(new, l)?;
        }
        return Some(());
    }
    let mut keyed: Vec<(u32, usize)> = lines.iter().enumerate().map(|(i, l)| (key(l), i)).collect();
    keyed.sort_unstable();
    for same in keyed.chunk_by(|a, b| a.0 == b.0) {
        let sums = group(mart, same[0].0);
        for (n, (_, i)) in same.iter().enumerate() {
            sums.add(n == 0, &lines[*i])?;
        }
    }
    Some(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray};
    use proptest::prelude::*;

    use super::*;
    use crate::marts::lines::tests::line_schema;
    use crate::marts::measures::Line;

    const STATUSES: [&str; 3] = ["pending", "shipped", "delivered"];
    const CHANNELS: [&str; 2] = ["Retail", "Online"];

    /// `(client, product, status, channel, units, sales)`.
    pub(crate) type TestLine = (i64, i64, usize, usize, i64, i64);

    /// Lines, grouped by order.
    type Orders = Vec<Vec<TestLine>>;

    /// `(order, line)` rows as the `orders` columns.
    pub(crate) fn batch(rows: &[(i64, TestLine)]) -> RecordBatch {
        let ints = |f: &dyn Fn(&TestLine) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, l)| f(l))))
        };
        let decimals = |f: &dyn Fn(&TestLine) -> i64| -> ArrayRef {
            let values = rows.iter().map(|(_, l)| i128::from(f(l)));
            Arc::new(
                Decimal128Array::from_iter_values(values)
                    .with_precision_and_scale(38, 4)
                    .unwrap(),
            )
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|(o, _)| *o))),
            ints(&|l| l.0),
            ints(&|l| l.1),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(_, l)| STATUSES[l.2]),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(_, l)| CHANNELS[l.3]),
            )),
            ints(&|l| l.4),
            decimals(&|l| l.5),
            decimals(&|l| 3 * l.5),
        ];
        RecordBatch::try_new(line_schema(), columns).unwrap()
    }

    /// Orders of 1 to 40 lines (some past [`SMALL_ORDER`]), each product once per order.
    fn orders() -> impl Strategy<Value = Orders> {
        let line = (0..4i64, 0..3usize, 0..2usize, 1..50i64, 0..10_000_000i64);
        let order = prop::collection::vec(line, 1..40);
        prop::collection::vec(order, 1..60).prop_map(|orders| {
            orders
                .into_iter()
                .map(|lines| {
                    (0..)
                        .zip(lines)
                        .map(|(p, (c, s, ch, u, m))| (c, p, s, ch, u, m))
                        .collect()
                })
                .collect()
        })
    }

    proptest! {
        /// Summed row by row in batches cut anywhere, the marts equal those the fold builds
        /// order by order ([`Marts::apply_order`]).
        #[test]
        fn a_runs_sums_are_the_marts_the_fold_builds(orders in orders(), cuts in prop::collection::vec(1..50usize, 1..8)) {
            let rows: Vec<(i64, _)> = (10i64..)
                .zip(&orders)
                .flat_map(|(o, lines)| lines.iter().map(move |l| (o, *l)))
                .collect();
            let mut sums = RunSums::default();
            let (mut at, mut cut) = (0, cuts.iter().cycle());
            while at < rows.len() {
                let end = (at + cut.next().unwrap()).min(rows.len());
                sums.add(&batch(&rows[at..end])).unwrap();
                at = end;
            }
            prop_assert_eq!(sums.rows, rows.len() as u64);
            let (marts, names) = sums.finish("2026-11-22").unwrap();
            let mut summed = Marts::default();
            let mut summed_names = Names::default();
            summed.add_new_orders(&mut summed_names, marts, &names);

            let mut expected = Marts::default();
            let mut names = Names::default();
            let day = names.id("2026-11-22");
            for (o, lines) in (10i64..).zip(&orders) {
                let lines: Vec<Line> = lines
                    .iter()
                    .map(|&(client, product, s, c, units, sales)| Line {
                        order: o,
                        client,
                        product,
                        status: names.id(STATUSES[s]),
                        channel: names.id(CHANNELS[c]),
                        day,
                        units,
                        sales,
                        volume: 3 * sales,
                    })
                    .collect();
                expected.apply_order(1, &lines);
            }
            // Interned ids differ: compare through the names.
            let mut remapped = Marts::default();
            let mut remapped_names = summed_names.clone();
            remapped.add_new_orders(&mut remapped_names, expected, &names);
            prop_assert_eq!(summed, remapped);
        }
    }

    #[test]
    fn rows_it_cannot_sum_exactly_are_refused() {
        let line = (1, 1, 0, 0, 1, 1);
        let mut sums = RunSums::default();
        sums.add(&batch(&[(5, line)])).unwrap();
        // An order id below the one before: that order's lines may be apart.
        let refused = sums.add(&batch(&[(4, (1, 2, 0, 0, 1, 1))])).unwrap_err();
        assert!(refused.0.contains("decrease"), "{refused:?}");
        // Ids that do not pack into one word, and a sum past 64 bits.
        let wide = RunSums::default().add(&batch(&[(1, (1 << 40, 1, 0, 0, 1, 1))]));
        assert!(wide.unwrap_err().0.contains("32 bits"));
        let negative = RunSums::default().add(&batch(&[(1, (-1, 1, 0, 0, 1, 1))]));
        assert!(negative.unwrap_err().0.contains("32 bits"));
        let mut sums = RunSums::default();
        let big = (1, 1, 0, 0, 1, i64::MAX / 4);
        sums.add(&batch(&[(1, big), (2, big), (3, big)]))
            .unwrap_err();
        // More statuses than a client's sums have slots for.
        let rows: Vec<_> = (0..5).map(|o| (o, (1, o, 0, 0, 1, 1))).collect();
        let rows = batch(&rows);
        let status = rows.schema().index_of("status").unwrap();
        let mut columns = rows.columns().to_vec();
        columns[status] = Arc::new(StringArray::from_iter_values(["a", "b", "c", "d", "e"]));
        let five = RecordBatch::try_new(rows.schema(), columns).unwrap();
        let refused = RunSums::default().add(&five).unwrap_err();
        assert!(refused.0.contains("statuses"), "{refused:?}");
        let four = five.slice(0, 4);
        assert!(RunSums::default().add(&four).is_ok());
    }
}
