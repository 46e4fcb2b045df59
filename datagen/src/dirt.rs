//! Bad rows: each breaks exactly one rule and stays on one physical line, so
//! the engine's reason for it is never ambiguous.
//!
//! Every bad row carries a fresh order id (or, for `invalid_order_id`, a
//! broken spelling of one), so no two bad rows are byte-identical and none
//! shares a key with a valid row.

use crate::catalog::{Catalog, NOTES, SALES_REPS};
use crate::config::Reason;
use crate::rng::{Rng, below};
use crate::row::{Col, Layout, Line, Patch};

const BAD_IDS: &[&[u8]] = &[
    b"abc",
    b"0",
    b"-5",
    b"12x",
    b"1.5",
    b"99999999999999999999",
    b"",
];
const EMPTY_TEXT: &[&[u8]] = &[b"", b" ", b"   ", b"\"\"", b"\" \""];
const BAD_PRICES: &[&[u8]] = &[
    b"-1.00",
    b"12.34567",
    b"abc",
    b"1e3",
    b"",
    b"123456789012345678.5",
];
const BAD_CCFS: &[&[u8]] = &[b"0", b"-3", b"2.5", b""];
const BAD_VOLUMES: &[&[u8]] = &[b"0", b"0.0", b"-0.5", b"1.23456"];
const BAD_CHANNELS: &[&[u8]] = &[b"Wholesale", b"Mail", b""];
const BAD_STATUSES: &[&[u8]] = &[b"shipped", b"lost", b""];
const EXTRA_FIELDS: &[&[u8]] = &[b"x", b"1", b"extra"];
/// Inserted into a plain client name; each is invalid UTF-8 before ASCII.
const BAD_UTF8: &[&[u8]] = &[b"\xFF", b"\xFE", b"\x80", b"\xC3", b"\xE2\x82"];

/// Valid on its own, and so is ccf 1_000_000; their product is not.
pub(crate) const OVERFLOW_PRICE: &[u8] = b"9999999999.99";
pub(crate) const OVERFLOW_CCF: u32 = 1_000_000;

/// A dirty row before rendering; replacement bytes live in the caller's
/// scratch buffer (see [`BadRow::patch`]).
pub(crate) struct BadRow {
    pub line: Line,
    replace: Option<Col>,
    drop: Option<Col>,
    extra: Option<&'static [u8]>,
    no_eol: bool,
}

impl BadRow {
    pub(crate) fn patch<'a>(&self, scratch: &'a [u8]) -> Patch<'a> {
        Patch {
            replace: self.replace.map(|c| (c, scratch)),
            drop: self.drop,
            extra: self.extra,
            no_eol: self.no_eol,
        }
    }
}

fn pick<T: Copy>(rng: &mut Rng, list: &[T]) -> T {
    list[below(rng, list.len() as u32) as usize]
}

/// A valid line for a fresh one-line order; `plain` restricts to names and
/// descriptions that need no quoting (for rows that must contain no `"`).
fn base_line(rng: &mut Rng, cat: &Catalog, order_id: u64, plain: bool) -> Line {
    let client = pick(
        rng,
        if plain {
            &cat.plain_clients
        } else {
            &cat.single_line_clients
        },
    );
    let product = if plain {
        pick(rng, &cat.plain_products)
    } else {
        below(rng, cat.product_ids.len() as u32)
    };
    Line {
        order_id,
        client,
        product,
        ccf: 1 + below(rng, 24),
        channel: (below(rng, 3) * 3) as u8,
        status: (below(rng, 3) * 3) as u8,
        rep: below(rng, SALES_REPS.len() as u32) as u8,
        note: below(rng, NOTES.len() as u32) as u8,
    }
}

/// Builds a row failing exactly `kind` (a [`Reason::ROW_KINDS`] member).
pub(crate) fn bad_row(
    kind: Reason,
    rng: &mut Rng,
    cat: &Catalog,
    layout: &Layout,
    order_id: u64,
    scratch: &mut Vec<u8>,
) -> BadRow {
    let plain = matches!(
        kind,
        Reason::FieldCount | Reason::InvalidUtf8 | Reason::BadQuoting
    );
    let mut line = base_line(rng, cat, order_id, plain);
    let mut row = BadRow {
        line,
        replace: None,
        drop: None,
        extra: None,
        no_eol: false,
    };
    scratch.clear();
    let mut set = |col: Col, list: &[&[u8]], rng: &mut Rng, row: &mut BadRow| {
        scratch.extend_from_slice(pick(rng, list));
        row.replace = Some(col);
    };
    match kind {
        Reason::FieldCount => {
            if below(rng, 2) == 0 {
                let droppable: usize = layout.cols.len() - 1;
                let mut i = below(rng, droppable as u32) as usize;
                // Never drop the order id: it keeps the row unique.
                if layout.cols[i] == Col::OrderId {
                    i = droppable;
                }
                row.drop = Some(layout.cols[i]);
            } else {
                row.extra = Some(pick(rng, EXTRA_FIELDS));
            }
        }
        Reason::InvalidUtf8 => {
            let name = cat.client_raw.get(line.client);
            let at = middle_boundary(name);
            scratch.extend_from_slice(&name[..at]);
            scratch.extend_from_slice(pick(rng, BAD_UTF8));
            scratch.extend_from_slice(&name[at..]);
            row.replace = Some(Col::ClientName);
        }
        Reason::BadQuoting => {
            // `Duff 15" Lager 355ml can`: an inch mark in an unquoted field.
            let desc = cat.product_raw.get(line.product);
            let at = desc.iter().position(|&b| b == b' ').unwrap_or(desc.len());
            scratch.extend_from_slice(&desc[..at]);
            scratch.push(b' ');
            scratch.extend_from_slice(itoa::Buffer::new().format(10 + below(rng, 51)).as_bytes());
            scratch.push(b'"');
            if at < desc.len() {
                scratch.extend_from_slice(&desc[at..]);
            } else {
                scratch.extend_from_slice(b" Keg");
            }
            row.replace = Some(Col::ProductDescription);
        }
        Reason::InvalidClientId => set(Col::ClientId, BAD_IDS, rng, &mut row),
        Reason::InvalidProductId => set(Col::ProductId, BAD_IDS, rng, &mut row),
        Reason::InvalidOrderId => {
            broken_order_id(rng, order_id, scratch);
            row.replace = Some(Col::OrderId);
        }
        Reason::EmptyClientName => set(Col::ClientName, EMPTY_TEXT, rng, &mut row),
        Reason::EmptyProductDescription => set(Col::ProductDescription, EMPTY_TEXT, rng, &mut row),
        Reason::InvalidProductPrice => set(Col::ProductPrice, BAD_PRICES, rng, &mut row),
        Reason::InvalidProductCcf => set(Col::ProductCcf, BAD_CCFS, rng, &mut row),
        Reason::InvalidProductVolume => set(Col::ProductVolume, BAD_VOLUMES, rng, &mut row),
        Reason::UnknownChannel => set(Col::Channel, BAD_CHANNELS, rng, &mut row),
        Reason::UnknownStatus => set(Col::Status, BAD_STATUSES, rng, &mut row),
        Reason::TotalOverflow => {
            line.ccf = OVERFLOW_CCF;
            row.line = line;
            set(Col::ProductPrice, &[OVERFLOW_PRICE], rng, &mut row);
        }
        Reason::UnterminatedQuote | Reason::KeyConflict => {
            unreachable!("{kind} is not a per-row kind")
        }
    }
    row
}

/// The last row of a file asking for it: client_name opens a quote that is
/// never closed, the row has no other `"`, and no line end follows.
pub(crate) fn unterminated_row(
    rng: &mut Rng,
    cat: &Catalog,
    order_id: u64,
    scratch: &mut Vec<u8>,
) -> BadRow {
    let line = base_line(rng, cat, order_id, true);
    scratch.clear();
    scratch.push(b'"');
    scratch.extend_from_slice(cat.client_raw.get(line.client));
    BadRow {
        line,
        replace: Some(Col::ClientName),
        drop: None,
        extra: None,
        no_eol: true,
    }
}

/// Non-numeric spellings that still embed the fresh id, keeping bad rows
/// unique: `1000123x`, `-1000123`, `1000123.5`, `abc1000123`, or a 20-digit
/// number beyond i64.
fn broken_order_id(rng: &mut Rng, n: u64, out: &mut Vec<u8>) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    match below(rng, 5) {
        0 => {
            out.extend_from_slice(digits);
            out.push(b'x');
        }
        1 => {
            out.push(b'-');
            out.extend_from_slice(digits);
        }
        2 => {
            out.extend_from_slice(digits);
            out.extend_from_slice(b".5");
        }
        3 => {
            out.extend_from_slice(b"abc");
            out.extend_from_slice(digits);
        }
        _ => {
            out.push(b'9');
            out.extend(std::iter::repeat_n(
                b'0',
                19usize.saturating_sub(digits.len()),
            ));
            out.extend_from_slice(digits);
        }
    }
}

/// A UTF-8 character boundary near the middle of `s` (never 0 when `s` has
/// more than one character), so the inserted byte is inside the name.
fn middle_boundary(s: &[u8]) -> usize {
    let mut at = s.len() / 2;
    while at > 0 && at < s.len() && (s[at] & 0xC0) == 0x80 {
        at += 1;
    }
    at.max(1).min(s.len())
}
