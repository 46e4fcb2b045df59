//! Every mart in memory ([`Marts`]), and how a fold changes them: for each order it touches,
//! its contribution after the fold minus its contribution before.

use hashbrown::HashMap;

use super::groups::{GroupKey, Groups};
use super::measures::{Line, Measures, Names, prefetched};

/// Every mart, in memory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Marts {
    pub(crate) clients: Groups<i64>,
    pub(crate) client_products: Groups<(i64, i64)>,
    pub(crate) products: Groups<i64>,
    pub(crate) statuses: Groups<u32>,
    pub(crate) channels: Groups<u32>,
    pub(crate) daily_channels: Groups<(u32, u32)>,
    pub(crate) client_statuses: Groups<(i64, u32)>,
}

/// Orders' lines to add to (sign 1) or take from (sign -1) the marts, applied together.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    lines: Vec<Line>,
    /// `(start, end, sign)`: one order's lines in `lines`.
    orders: Vec<(usize, usize, i64)>,
}

impl Batch {
    /// Lines held before a batch is applied: enough to amortise a fork of the work.
    pub const LINES: usize = 1 << 16;

    pub fn push(&mut self, sign: i64, lines: &[Line]) {
        if lines.is_empty() {
            return;
        }
        let start = self.lines.len();
        self.lines.extend_from_slice(lines);
        self.orders.push((start, self.lines.len(), sign));
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.orders.clear();
    }
}

impl Marts {
    /// Adds `sign` × the contribution of one order's lines: their sums to each group, and
    /// ±1 to `orders` once per group the order has a line in.
    #[cfg(test)]
    pub(crate) fn apply_order(&mut self, sign: i64, lines: &[Line]) {
        let mut batch = Batch::default();
        batch.push(sign, lines);
        self.apply(&batch);
    }

    /// Adds every order of `batch` ([`Marts::apply_order`]): the largest mart (client ×
    /// product, one lookup per line in a table larger than the caches) on one thread, the
    /// others on another.
    pub(crate) fn apply(&mut self, batch: &Batch) {
        let Marts {
            clients,
            client_products,
            products,
            statuses,
            channels,
            daily_channels,
            client_statuses,
        } = self;
        // A scoped thread, not a pool's: what it allocates (a growing table) goes back to
        // the process when it ends, where a pool thread's heap would keep it from the rest
        // of the fold.
        std::thread::scope(|scope| {
            scope.spawn(|| apply_per_line(client_products, batch, |l| (l.client, l.product)));
            apply_per_line(products, batch, |l| l.product);
            apply_to(clients, batch, |l| l.client);
            apply_to(client_statuses, batch, |l| (l.client, l.status));
            apply_to(statuses, batch, |l| l.status);
            apply_to(channels, batch, |l| l.channel);
            apply_to(daily_channels, batch, |l| (l.day, l.channel));
        });
    }

    /// Adds the marts of a run none of whose orders had a current line before it (so every
    /// group's measures simply add up).
    /// `marts` name their statuses, channels and days with `theirs`; `names` are this one's.
    pub(crate) fn add_new_orders(&mut self, names: &mut Names, marts: Marts, theirs: &Names) {
        let ids: Vec<u32> = theirs.all().iter().map(|n| names.id(n)).collect();
        let id = |i: u32| ids[i as usize];
        add_groups(&mut self.clients, marts.clients);
        add_groups(&mut self.client_products, marts.client_products);
        add_groups(&mut self.products, marts.products);
        self.statuses
            .add(marts.statuses.into_iter().map(|(s, m)| (id(s), m)));
        self.channels
            .add(marts.channels.into_iter().map(|(c, m)| (id(c), m)));
        self.daily_channels.add(
            marts
                .daily_channels
                .into_iter()
                .map(|((d, c), m)| ((id(d), id(c)), m)),
        );
        self.client_statuses.add(
            marts
                .client_statuses
                .into_iter()
                .map(|((c, s), m)| ((c, id(s)), m)),
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
}

/// Each client's product with the largest sales (ties: the smallest product id), from the
/// client × product groups sorted by client, then product.
pub(crate) fn top_products(pairs: &[((i64, i64), &Measures)]) -> HashMap<i64, (i64, i128)> {
    let mut top: HashMap<i64, (i64, i128)> = HashMap::new();
    // The client being read, its top product so far and that product's sales.
    let mut best: Option<(i64, i64, i128)> = None;
    for &((client, product), m) in prefetched(pairs) {
        match &mut best {
            // Products ascend: a later one must sell more to win a tie's place.
            Some((c, p, sales)) if *c == client => {
                if m.sales > *sales {
                    (*p, *sales) = (product, m.sales);
                }
            }
            _ => {
                if let Some((c, p, sales)) = best.replace((client, product, m.sales)) {
                    top.insert(c, (p, sales));
                }
            }
        }
    }
    if let Some((c, p, sales)) = best {
        top.insert(c, (p, sales));
    }
    top
}

/// Adds `from`'s groups to `to`'s (taking `from` whole when `to` is empty).
fn add_groups<K: GroupKey>(to: &mut Groups<K>, from: Groups<K>) {
    if to.len() == 0 {
        *to = from;
    } else {
        to.add(from);
    }
}

/// Lines ahead of the one being added whose group is prefetched: enough to overlap several
/// cache misses, few enough that the lines are still cached when used.
const PREFETCH_AHEAD: usize = 12;

/// Adds each order of `batch` to a mart whose groups an order's lines never share, since
/// they include the product (an order has one current line per product): each line is
/// one lookup, prefetched ahead, and counts its order once.
fn apply_per_line<K: GroupKey>(mart: &mut Groups<K>, batch: &Batch, key: impl Fn(&Line) -> K) {
    for &(start, end, sign) in &batch.orders {
        for i in start..end {
            if let Some(ahead) = batch.lines.get(i + PREFETCH_AHEAD) {
                mart.prefetch(&key(ahead));
            }
            let line = &batch.lines[i];
            let m = mart.entry(key(line));
            m.orders += sign;
            m.add_line(sign, line);
        }
    }
}

/// Lines of an order with several groups below which finding a line's earlier group-mates
/// by comparison beats sorting the order's lines.
pub(crate) const SMALL_ORDER: usize = 16;

/// Adds each order of `batch` to the mart grouped by `key`: one lookup when the order's lines
/// share their group (a client, a channel), else one per line or per group.
fn apply_to<K: GroupKey + Ord>(mart: &mut Groups<K>, batch: &Batch, key: impl Fn(&Line) -> K) {
    let mut keys: Vec<(K, usize)> = Vec::new();
    for &(start, end, sign) in &batch.orders {
        let lines = &batch.lines[start..end];
        let first = key(&lines[0]);
        if lines.iter().all(|l| key(l) == first) {
            let m = mart.entry(first);
            m.orders += sign;
            for l in lines {
                m.add_line(sign, l);
            }
            continue;
        }
        if lines.len() <= SMALL_ORDER {
            // The order counts once in a group: at its first line there.
            for (i, l) in lines.iter().enumerate() {
                let k = key(l);
                let m = mart.entry(k);
                if !lines[..i].iter().any(|e| key(e) == k) {
                    m.orders += sign;
                }
                m.add_line(sign, l);
            }
            continue;
        }
        keys.clear();
        keys.extend(lines.iter().enumerate().map(|(i, l)| (key(l), i)));
        keys.sort_unstable();
        for group in keys.chunk_by(|a, b| a.0 == b.0) {
            let m = mart.entry(group[0].0);
            m.orders += sign;
            for (_, i) in group {
                m.add_line(sign, &lines[*i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(order: i64, client: i64, product: i64, status: u32, sales: i64) -> Line {
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
        let order = [
            line(1, 7, 10, 0, 5),
            line(1, 7, 11, 0, 6),
            line(1, 7, 12, 1, 7),
        ];
        marts.apply_order(1, &order);
        let c = marts.clients[&7];
        assert_eq!((c.orders, c.order_lines, c.units, c.sales), (1, 3, 6, 18));
        assert_eq!(marts.statuses[&0].orders, 1);
        assert_eq!(marts.statuses[&0].order_lines, 2);
        assert_eq!(marts.statuses[&1].orders, 1);
        assert_eq!(marts.products[&10].orders, 1);
        assert_eq!(top_of(&marts)[&7], (12, 7));
    }

    #[test]
    fn after_minus_before_is_the_new_state() {
        // Order 1 moves one line from client 7 to client 8; the state equals a fresh build.
        let before = [line(1, 7, 10, 0, 5), line(1, 7, 11, 0, 6)];
        let after = [line(1, 7, 10, 0, 5), line(1, 8, 11, 1, 9)];
        let mut folded = Marts::default();
        folded.apply_order(1, &before);
        folded.apply_order(-1, &before);
        folded.apply_order(1, &after);
        folded.prune();
        let mut fresh = Marts::default();
        fresh.apply_order(1, &after);
        assert_eq!(folded, fresh);
        assert_eq!(folded.clients.len(), 2);
    }

    #[test]
    fn a_large_order_counts_once_per_group_like_a_small_one() {
        // 40 lines in 3 statuses (14, 13, 13 lines) take the sorting path.
        const { assert!(40 > SMALL_ORDER) };
        let order: Vec<Line> = (0..40).map(|p| line(1, 7, p, (p % 3) as u32, 2)).collect();
        let mut marts = Marts::default();
        marts.apply_order(1, &order);
        for (status, lines) in [(0, 14), (1, 13), (2, 13)] {
            let m = marts.statuses[&status];
            assert_eq!(
                (m.orders, m.order_lines, m.sales),
                (1, lines, 2 * lines as i128)
            );
        }
        assert_eq!(marts.clients[&7].orders, 1);
        assert_eq!(marts.clients[&7].order_lines, 40);
        assert_eq!(marts.client_products.len(), 40);
        assert!(marts.client_products.iter().all(|(_, m)| m.orders == 1));
    }

    fn top_of(marts: &Marts) -> HashMap<i64, (i64, i128)> {
        top_products(&crate::marts::store::sorted_pairs(
            &marts.client_products,
            2,
        ))
    }

    #[test]
    fn each_clients_top_product_is_its_best_seller() {
        let mut x: u64 = 5;
        let mut next = move |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % n) as i64
        };
        let mut groups: Groups<(i64, i64)> = Groups::default();
        for _ in 0..5_000 {
            // Few sales values: many ties.
            let sales = i128::from(next(20));
            groups.entry((next(300), next(40))).sales = sales;
        }
        let mut expected: HashMap<i64, (i64, i128)> = HashMap::new();
        for (&(client, product), m) in groups.iter() {
            let best = expected.entry(client).or_insert((product, m.sales));
            if (m.sales, -product) > (best.1, -best.0) {
                *best = (product, m.sales);
            }
        }
        let pairs = crate::marts::store::sorted_pairs(&groups, 2);
        assert_eq!(top_products(&pairs), expected);
        assert!(top_products(&[]).is_empty());
    }

    #[test]
    fn top_product_ties_go_to_the_smallest_id() {
        let mut marts = Marts::default();
        marts.apply_order(1, &[line(1, 7, 12, 0, 5), line(1, 7, 11, 0, 5)]);
        assert_eq!(top_of(&marts)[&7], (11, 5));
    }
}
