//! One current order line as the marts see it, the measures a group sums, and the interned
//! names of the few-valued columns.

use hashbrown::HashMap;

/// The measures of a group of order lines. Money and volumes in units of 10⁻⁴.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Measures {
    /// Distinct orders with a line in the group.
    pub orders: i64,
    /// Current order lines in the group.
    pub order_lines: i64,
    /// Units: the sum of the lines' `product_ccf`.
    pub units: i64,
    /// The sum of the lines' `total_price`, in units of 10⁻⁴.
    pub sales: i128,
    /// The sum of the lines' `total_volume`, in units of 10⁻⁴.
    pub volume: i128,
}

impl Measures {
    pub(crate) fn add_line(&mut self, sign: i64, line: &Line) {
        self.order_lines += sign;
        self.units += sign * line.units;
        self.sales += i128::from(sign * line.sales);
        self.volume += i128::from(sign * line.volume);
    }
}

/// Client × product groups in order, each one's measures prefetched a few groups before it
/// is yielded: they are references into a table much larger than the caches, in an order
/// no hardware prefetcher could guess, so without this each read waits for its own miss.
pub(crate) fn prefetched<'a, K>(
    groups: &'a [(K, &'a Measures)],
) -> impl Iterator<Item = &'a (K, &'a Measures)> {
    const AHEAD: usize = 16;
    groups.iter().enumerate().map(move |(i, group)| {
        if let Some((_, ahead)) = groups.get(i + AHEAD) {
            duff_engine::prefetch::prefetch_line(std::ptr::from_ref(*ahead) as usize);
        }
        group
    })
}

/// One current order line, reduced to what the marts group and sum. Strings are interned;
/// a line's money and volume are DECIMAL(18,4), so they fit 64 bits (sums do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    pub order: i64,
    pub client: i64,
    pub product: i64,
    pub status: u32,
    pub channel: u32,
    pub day: u32,
    pub units: i64,
    pub sales: i64,
    pub volume: i64,
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

    /// Every name, in id order.
    pub(crate) fn all(&self) -> &[std::string::String] {
        &self.names
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}
