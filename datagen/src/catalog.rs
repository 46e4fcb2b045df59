//! Clients and products, built once per file from the seed.
//!
//! Names and descriptions are rendered to CSV bytes (quoted where needed)
//! up front, so writing a row is only copying slices: no per-row allocation,
//! and every client_id/product_id maps to one stable set of bytes.

use rand::seq::SliceRandom;

use crate::names::{BEERS, EDITIONS, FIRST, LAST, NICKS, PACKS, PERSON_SUFFIXES, TOWNS, VENUES};
use crate::rng::{self, Rng, Zipf, below, percent, unit};

/// Valid channel spellings, `[canonical, lower, upper]` per channel.
pub(crate) const CHANNELS: [[&[u8]; 3]; 3] = [
    [b"Retail", b"retail", b"RETAIL"],
    [b"Online", b"online", b"ONLINE"],
    [b"B2B", b"b2b", b"b2B"],
];

/// Valid status spellings, `[canonical, title, upper]` per status.
pub(crate) const STATUSES: [[&[u8]; 3]; 3] = [
    [b"created", b"Created", b"CREATED"],
    [b"delivered", b"Delivered", b"DELIVERED"],
    [b"broken", b"Broken", b"BROKEN"],
];

/// Values of the optional extra columns; plain on purpose (no quoting).
pub(crate) const SALES_REPS: &[&[u8]] = &[
    b"Lenny Leonard",
    b"Carl Carlson",
    b"Homer Simpson",
    b"Frank Grimes",
    b"Gil Gunderson",
    b"Lionel Hutz",
    b"Duffman",
    b"Waylon Smithers",
];
pub(crate) const NOTES: &[&[u8]] = &[
    b"none",
    b"call ahead",
    b"back door",
    b"rush",
    b"promo",
    b"fragile",
    b"keep cold",
    b"invoice later",
];

/// Many short byte strings in one buffer.
#[derive(Default)]
pub(crate) struct Strings {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl Strings {
    fn push(&mut self, s: &[u8]) {
        self.bytes.extend_from_slice(s);
        self.ends.push(self.bytes.len() as u32);
    }

    #[inline]
    pub(crate) fn get(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }
}

/// Renders one CSV field: quoted (with `""` escapes) only when it must be.
pub(crate) fn csv_field(raw: &str, out: &mut Vec<u8>) {
    if raw
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for b in raw.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(raw.as_bytes());
    }
}

pub(crate) struct Catalog {
    pub client_ids: Vec<u64>,
    /// CSV-rendered client names (quoted where needed).
    pub client_fields: Strings,
    /// Raw names; only used for plain clients, whose raw form is the field.
    pub client_raw: Strings,
    /// Clients whose name needs no quoting at all.
    pub plain_clients: Vec<u32>,
    /// Clients whose name has no embedded newline.
    pub single_line_clients: Vec<u32>,
    pub client_rank: Zipf,

    pub product_ids: Vec<u64>,
    pub product_fields: Strings,
    pub product_raw: Strings,
    pub prices: Strings,
    pub volumes: Strings,
    pub plain_products: Vec<u32>,
    pub product_rank: Zipf,
}

impl Catalog {
    pub(crate) fn build(seed: u64, clients: u32, products: u32) -> Catalog {
        let mut rng = rng::stream(seed, rng::CATALOG_STREAM);
        let mut cat = Catalog {
            client_ids: shuffled_ids(&mut rng, clients, 100_001),
            client_fields: Strings::default(),
            client_raw: Strings::default(),
            plain_clients: Vec::new(),
            single_line_clients: Vec::new(),
            client_rank: Zipf::new(clients),
            product_ids: shuffled_ids(&mut rng, products, 10_001),
            product_fields: Strings::default(),
            product_raw: Strings::default(),
            prices: Strings::default(),
            volumes: Strings::default(),
            plain_products: Vec::new(),
            product_rank: Zipf::new(products),
        };
        let mut field = Vec::with_capacity(64);
        for i in 0..clients {
            // The last client is forced plain so bad rows always find one.
            let name = if i + 1 == clients && cat.plain_clients.is_empty() {
                plain_name(&mut rng)
            } else {
                client_name(&mut rng)
            };
            cat.add_client(i, &name, &mut field);
        }
        cat.add_products(&mut rng, products, &mut field);
        cat
    }

    fn add_client(&mut self, i: u32, name: &str, field: &mut Vec<u8>) {
        field.clear();
        csv_field(name, field);
        if field.as_slice() == name.as_bytes() {
            self.plain_clients.push(i);
        }
        if !name.contains('\n') {
            self.single_line_clients.push(i);
        }
        self.client_fields.push(field);
        self.client_raw.push(name.as_bytes());
    }

    fn add_products(&mut self, rng: &mut Rng, products: u32, field: &mut Vec<u8>) {
        // Shuffle beer×pack combinations so the most popular ranks are a mix.
        let mut combos: Vec<(usize, usize)> = (0..BEERS.len())
            .flat_map(|b| (0..PACKS.len()).map(move |p| (b, p)))
            .collect();
        combos.shuffle(rng);
        for i in 0..products as usize {
            let mut combo = combos[i % combos.len()];
            if i + 1 == products as usize && self.plain_products.is_empty() {
                // Bad rows need one description without a comma.
                combo = (combo.0, 0);
            }
            let (beer, pack) = combo;
            let round = i / combos.len();
            let (label, joiner, ml, factor) = PACKS[pack];
            let edition = match EDITIONS.get(round) {
                Some(e) => (*e).to_string(),
                None => format!(" Batch {round}"),
            };
            let desc = format!("{}{edition}{joiner}{label}", BEERS[beer]);
            field.clear();
            csv_field(&desc, field);
            if field.as_slice() == desc.as_bytes() {
                self.plain_products.push(i as u32);
            }
            self.product_fields.push(field);
            self.product_raw.push(desc.as_bytes());

            // Price per litre 2..6, bulk discount, ±15% jitter, in cents.
            let per_litre = 2.0 + 4.0 * unit(rng);
            let jitter = 0.85 + 0.3 * unit(rng);
            let cents = (per_litre * f64::from(ml) / 1000.0 * factor * jitter * 100.0).round();
            field.clear();
            push_price(cents.clamp(99.0, 25_000.0) as u64, field);
            self.prices.push(field);

            field.clear();
            push_volume(ml, percent(rng, 30), field);
            self.volumes.push(field);
        }
    }
}

/// Ids `base..base+n` in random order, so popular ranks don't get small ids.
fn shuffled_ids(rng: &mut Rng, n: u32, base: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (0..u64::from(n)).map(|i| base + i).collect();
    ids.shuffle(rng);
    ids
}

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[below(rng, list.len() as u32) as usize]
}

/// ~10% `Last, First`-style names with a comma, ~1% with an embedded newline,
/// ~1% with quotes, the rest plain.
fn client_name(rng: &mut Rng) -> String {
    match below(rng, 1000) {
        0..100 => {
            if percent(rng, 60) {
                format!("{}, {}", pick(rng, LAST), pick(rng, FIRST))
            } else {
                format!("{}, {}", pick(rng, VENUES), pick(rng, TOWNS))
            }
        }
        100..110 => {
            let venue = loop {
                let v = pick(rng, VENUES);
                if v.contains(' ') {
                    break v;
                }
            };
            let spaces: Vec<usize> = venue.match_indices(' ').map(|(i, _)| i).collect();
            let at = spaces[below(rng, spaces.len() as u32) as usize];
            format!("{}\n{}", &venue[..at], &venue[at + 1..])
        }
        110..120 => {
            if percent(rng, 50) {
                format!("The \"{}\"", pick(rng, VENUES))
            } else {
                let (first, nick, last) = (pick(rng, FIRST), pick(rng, NICKS), pick(rng, LAST));
                format!("{first} \"{nick}\" {last}")
            }
        }
        _ => plain_name(rng),
    }
}

fn plain_name(rng: &mut Rng) -> String {
    match below(rng, 10) {
        0..2 => pick(rng, VENUES).to_string(),
        2..4 => format!("{} {}", pick(rng, VENUES), pick(rng, TOWNS)),
        4..7 => format!("{} #{}", pick(rng, VENUES), 1 + below(rng, 999)),
        _ => {
            let (first, last) = (pick(rng, FIRST), pick(rng, LAST));
            format!("{first} {last}{}", pick(rng, PERSON_SUFFIXES))
        }
    }
}

/// `12.50`: always two fraction digits.
pub(crate) fn push_price(cents: u64, out: &mut Vec<u8>) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(cents / 100).as_bytes());
    out.push(b'.');
    let frac = cents % 100;
    out.push(b'0' + (frac / 10) as u8);
    out.push(b'0' + (frac % 10) as u8);
}

/// Litres from millilitres: `0.355`, `0.5`, `30`, or with `fixed3`
/// `1.000`/`30.000`. All spellings are valid decimals.
fn push_volume(ml: u32, fixed3: bool, out: &mut Vec<u8>) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(ml / 1000).as_bytes());
    let frac = ml % 1000;
    if frac == 0 && !fixed3 {
        return;
    }
    out.push(b'.');
    let digits = [
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    let keep = if fixed3 {
        3
    } else {
        3 - digits.iter().rev().take_while(|&&d| d == b'0').count()
    };
    out.extend_from_slice(&digits[..keep]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut v = Vec::new();
        push_price(1250, &mut v);
        assert_eq!(v, b"12.50");
        for (ml, fixed, want) in [
            (355, false, "0.355"),
            (500, false, "0.5"),
            (30_000, false, "30"),
            (1_000, true, "1.000"),
            (2_130, false, "2.13"),
        ] {
            v.clear();
            push_volume(ml, fixed, &mut v);
            assert_eq!(v, want.as_bytes());
        }
        v.clear();
        csv_field("The \"Frying Dutchman\"", &mut v);
        assert_eq!(v, br#""The ""Frying Dutchman""""#);
    }

    #[test]
    fn catalog_has_plain_entries_even_when_tiny() {
        for seed in 0..50 {
            let cat = Catalog::build(seed, 1, 1);
            assert_eq!(cat.plain_clients, vec![0]);
            assert_eq!(cat.plain_products.len(), 1, "seed {seed}");
        }
    }
}
