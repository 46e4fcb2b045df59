//! The members of the run's dimensions (clients, products): each id with the values of its last
//! occurrence in the file.
//!
//! Nearly every range holds nearly every member (10 000 clients in ~40 000 rows), so building
//! each range's members as new strings and merging them all cost about a twentieth of the
//! engine's CPU. Instead each range is compared, in parallel, with the members known before its
//! window: it reports only members that are new or whose values differ at their last occurrence
//! in the range, and which known members it holds with their known values. Those matter only
//! when an earlier range of the same window changed such a member: the later range restores it.

use hashbrown::HashMap;

/// One dimension's members, in order of first appearance.
pub(crate) struct Members<V> {
    index: HashMap<i64, u32>,
    ids: Vec<i64>,
    values: Vec<V>,
}

/// What one range says about a dimension, relative to the members known before its window.
pub(crate) struct RangeMembers<V> {
    /// Members new to the dimension, or whose values at their last occurrence in the range
    /// differ from the known ones.
    changed: Vec<(i64, V)>,
    /// Known members whose last occurrence in the range holds their known values.
    unchanged: Vec<u32>,
}

impl<V: Clone> Members<V> {
    pub(crate) fn new() -> Self {
        Members {
            index: HashMap::new(),
            ids: Vec::new(),
            values: Vec::new(),
        }
    }

    /// The members of a range whose rows hold `ids` (in line order). `same(row, known)` says
    /// whether row `row` holds a known member's values; `value(row)` makes them.
    pub(crate) fn of_range(
        &self,
        ids: &[i64],
        same: impl Fn(usize, &V) -> bool,
        value: impl Fn(usize) -> V,
    ) -> RangeMembers<V> {
        let mut out = RangeMembers {
            changed: Vec::new(),
            unchanged: Vec::new(),
        };
        let mut seen = vec![false; self.ids.len()];
        let mut new_ids: HashMap<i64, ()> = HashMap::new();
        // Backwards: the first time a member is met is its last occurrence.
        let mut next_row_id = None;
        for (row, &id) in ids.iter().enumerate().rev() {
            // An order's lines share their client: a run of one id is met once.
            if next_row_id.replace(id) == Some(id) {
                continue;
            }
            match self.index.get(&id) {
                Some(&m) => {
                    if std::mem::replace(&mut seen[m as usize], true) {
                        continue;
                    }
                    if same(row, &self.values[m as usize]) {
                        out.unchanged.push(m);
                    } else {
                        out.changed.push((id, value(row)));
                    }
                }
                None => {
                    if new_ids.insert(id, ()).is_none() {
                        out.changed.push((id, value(row)));
                    }
                }
            }
        }
        out
    }

    /// Takes in the ranges of one window, in line order (each made by [`Members::of_range`]
    /// against the members as they were before the window).
    pub(crate) fn apply(&mut self, ranges: impl IntoIterator<Item = RangeMembers<V>>) {
        let known = self.ids.len();
        // Known members changed by a range of this window: their values before it.
        let mut before: HashMap<u32, V> = HashMap::new();
        for range in ranges {
            if !before.is_empty() {
                for m in range.unchanged {
                    if let Some(v) = before.get(&m) {
                        self.values[m as usize] = v.clone();
                    }
                }
            }
            for (id, v) in range.changed {
                match self.index.get(&id) {
                    Some(&m) => {
                        let slot = &mut self.values[m as usize];
                        if (m as usize) < known && !before.contains_key(&m) {
                            before.insert(m, slot.clone());
                        }
                        *slot = v;
                    }
                    None => {
                        self.index.insert(id, self.ids.len() as u32);
                        self.ids.push(id);
                        self.values.push(v);
                    }
                }
            }
        }
    }

    /// Every member, by id.
    pub(crate) fn into_sorted(self) -> Vec<(i64, V)> {
        let mut all: Vec<(i64, V)> = self.ids.into_iter().zip(self.values).collect();
        all.sort_unstable_by_key(|m| m.0);
        all
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Rows as (id, value), windows of ranges of rows.
    type Windows = Vec<Vec<Vec<(i64, u8)>>>;

    fn run(windows: &Windows) -> Vec<(i64, u8)> {
        let mut members = Members::new();
        for window in windows {
            let ranges: Vec<RangeMembers<u8>> = window
                .iter()
                .map(|rows| {
                    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
                    members.of_range(&ids, |row, known| rows[row].1 == *known, |row| rows[row].1)
                })
                .collect();
            members.apply(ranges);
        }
        members.into_sorted()
    }

    /// The plain definition: the value of each id's last row.
    fn last_values(windows: &Windows) -> Vec<(i64, u8)> {
        let mut last = BTreeMap::new();
        for row in windows.iter().flatten().flatten() {
            last.insert(row.0, row.1);
        }
        last.into_iter().collect()
    }

    #[test]
    fn a_later_range_restores_a_value_an_earlier_range_of_its_window_changed() {
        let windows: Windows = vec![
            vec![vec![(1, 10), (2, 20)]],
            // Range one changes client 1; range two holds it with its old value again.
            vec![vec![(1, 11)], vec![(1, 10), (2, 20)]],
        ];
        assert_eq!(run(&windows), [(1, 10), (2, 20)]);
    }

    proptest! {
        #[test]
        fn each_member_has_the_values_of_its_last_row(
            windows in prop::collection::vec(
                prop::collection::vec(
                    prop::collection::vec((0i64..12, 0u8..3), 0..30),
                    0..5,
                ),
                0..6,
            ),
        ) {
            prop_assert_eq!(run(&windows), last_values(&windows));
        }
    }
}
