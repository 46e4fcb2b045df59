//! The data contract's vocabulary: required columns, channels and statuses with their fixed ids.

use crate::error::Error;

/// Required input columns, in canonical order. Header names are matched trimmed and
/// case-insensitively, in any order.
pub const REQUIRED_COLUMNS: [&str; 10] = [
    "client_id",
    "client_name",
    "order_id",
    "product_id",
    "product_description",
    "product_price",
    "product_ccf",
    "product_volume",
    "point_of_sale_channel",
    "status",
];

/// Index into [`REQUIRED_COLUMNS`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Col {
    ClientId,
    ClientName,
    OrderId,
    ProductId,
    ProductDescription,
    ProductPrice,
    ProductCcf,
    ProductVolume,
    Channel,
    Status,
}

/// Order statuses and their ids in `dim_status`. The ids are part of the contract: never renumber.
pub const STATUSES: [(i32, &str); 3] = [(1, "created"), (2, "delivered"), (3, "broken")];

/// The default sales channels and their ids in `dim_channels`.
pub const DEFAULT_CHANNELS: [(i32, &str); 3] = [(1, "Retail"), (2, "Online"), (3, "B2B")];

/// The accepted point-of-sale channels. Values match case-insensitively and are stored in their
/// canonical spelling. Ids are stable forever: the defaults have 1–3, any other channel gets an id
/// derived from its lower-cased name (FNV-1a, ≥ 1000), so it is the same in every run and
/// whatever the order of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    entries: Vec<(i32, String)>,
    /// Each entry's [`short_word`] (`None` for a name longer than 8 bytes).
    words: Vec<Option<(usize, u64)>>,
}

impl Default for Channels {
    fn default() -> Self {
        Channels::of(
            DEFAULT_CHANNELS
                .iter()
                .map(|&(id, n)| (id, n.to_string()))
                .collect(),
        )
    }
}

impl Channels {
    /// Channels from their canonical names (e.g. `["Retail", "Online", "B2B", "Kiosk"]`).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Self, Error> {
        let mut entries: Vec<(i32, String)> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if name.is_empty() || name.contains(',') || name.contains('"') {
                return Err(Error::Config(format!("invalid channel name {name:?}")));
            }
            if entries.iter().any(|(_, n)| n.eq_ignore_ascii_case(name)) {
                return Err(Error::Config(format!("channel {name:?} is listed twice")));
            }
            entries.push((Self::id_for(name), name.to_string()));
        }
        if entries.is_empty() {
            return Err(Error::Config("at least one channel is required".into()));
        }
        if entries.len() > u8::MAX as usize {
            return Err(Error::Config("at most 255 channels".into()));
        }
        Ok(Channels::of(entries))
    }

    fn of(entries: Vec<(i32, String)>) -> Self {
        let words = entries
            .iter()
            .map(|(_, n)| short_word(n.as_bytes()))
            .collect();
        Channels { entries, words }
    }

    fn id_for(name: &str) -> i32 {
        if let Some(&(id, _)) = DEFAULT_CHANNELS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
        {
            return id;
        }
        let mut h: u32 = 0x811c_9dc5;
        for b in name.to_ascii_lowercase().bytes() {
            h = (h ^ b as u32).wrapping_mul(0x0100_0193);
        }
        1000 + (h % 1_000_000_000) as i32
    }

    /// Position of the channel matching `value` (already trimmed), if any.
    #[inline]
    pub(crate) fn lookup(&self, value: &[u8]) -> Option<u8> {
        // Nearly every row spells it exactly: compare bytes before folding case, and a short
        // name as one word (a call to memcmp per row and entry cost 1% of a run).
        let entries = &self.entries;
        match short_word(value) {
            Some(word) => self.words.iter().position(|&w| w == Some(word)),
            None => entries.iter().position(|(_, n)| n.as_bytes() == value),
        }
        .or_else(|| {
            entries
                .iter()
                .position(|(_, n)| n.as_bytes().eq_ignore_ascii_case(value))
        })
        .map(|i| i as u8)
    }

    /// Every channel as `(id, canonical name)`, in the order they were given.
    pub fn entries(&self) -> &[(i32, String)] {
        &self.entries
    }

    /// The channels' canonical names, in the order they were given.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|(_, n)| n.clone()).collect()
    }
}

/// A value of at most 8 bytes as its length and one word (at most two overlapping loads),
/// which together differ for any two different values; `None` for a longer value.
#[inline(always)]
fn short_word(b: &[u8]) -> Option<(usize, u64)> {
    let n = b.len();
    let word = match n {
        0 => 0,
        // The first, middle and last bytes: every byte of a value this short.
        1..=3 => u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
        // Four bytes from the start and four to the end: together, every byte.
        4..=8 => {
            let four = |at: usize| u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()));
            four(0) | four(n - 4) << 32
        }
        _ => return None,
    };
    Some((n, word))
}

/// Position in [`STATUSES`] of the status matching `value` (already trimmed).
#[inline]
pub(crate) fn lookup_status(value: &[u8]) -> Option<u8> {
    STATUSES
        .iter()
        .position(|(_, n)| n.as_bytes() == value)
        .or_else(|| {
            STATUSES
                .iter()
                .position(|(_, n)| n.as_bytes().eq_ignore_ascii_case(value))
        })
        .map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn channel_ids_are_stable_and_order_independent() {
        let a = Channels::new(&["Retail", "Kiosk", "Online", "B2B"]).unwrap();
        let b = Channels::new(&["kiosk", "B2B", "online", "retail"]).unwrap();
        let id = |c: &Channels, n: &str| {
            c.entries()
                .iter()
                .find(|(_, x)| x.eq_ignore_ascii_case(n))
                .unwrap()
                .0
        };
        for n in ["Retail", "Online", "B2B", "Kiosk"] {
            assert_eq!(id(&a, n), id(&b, n));
        }
        assert_eq!(id(&a, "Retail"), 1);
        assert!(id(&a, "Kiosk") >= 1000);
        assert_eq!(Channels::default().lookup(b"ONLINE"), Some(1));
        assert_eq!(Channels::default().lookup(b"Wholesale"), None);
        assert!(Channels::new(&["A", "a"]).is_err());
        assert!(Channels::new::<&str>(&[]).is_err());
        assert_eq!(lookup_status(b"Delivered"), Some(1));
        assert_eq!(lookup_status(b"broken"), Some(2));
        assert_eq!(Channels::default().lookup(b"B2B"), Some(2));
        assert_eq!(lookup_status(b"shipped"), None);
    }

    proptest! {
        /// The one-word comparison finds what comparing the bytes finds, for names of 1 to
        /// 12 bytes and values that are a name, a name with one byte changed (a near miss)
        /// or any bytes, over a small alphabet.
        #[test]
        fn lookup_finds_what_a_byte_comparison_finds(
            names in prop::collection::vec("[a-cA\\x00]{1,12}", 1..6),
            other in prop::collection::vec(prop::sample::select(b"abcA\0".to_vec()), 0..12),
            pick in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"abcA\0".to_vec()),
            near_miss in any::<bool>(),
            any_bytes in any::<bool>(),
        ) {
            let mut distinct: Vec<String> = Vec::new();
            for n in names {
                if !distinct.iter().any(|d| d.eq_ignore_ascii_case(&n)) && n.trim() == n {
                    distinct.push(n);
                }
            }
            prop_assume!(!distinct.is_empty());
            let channels = Channels::new(&distinct).unwrap();
            let mut value = distinct[pick.index(distinct.len())].as_bytes().to_vec();
            if any_bytes {
                value = other;
            } else if near_miss {
                let i = at.index(value.len());
                value[i] = byte;
            }
            let expected = distinct
                .iter()
                .position(|n| n.as_bytes() == value)
                .or_else(|| distinct.iter().position(|n| n.as_bytes().eq_ignore_ascii_case(&value)))
                .map(|i| i as u8);
            prop_assert_eq!(channels.lookup(&value), expected);
        }
    }
}
