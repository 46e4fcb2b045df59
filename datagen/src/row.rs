//! Column layout, header, and the hot path that renders one record.

use rand::seq::SliceRandom;

use crate::catalog::{CHANNELS, Catalog, NOTES, SALES_REPS, STATUSES};
use crate::config::GenConfig;
use crate::rng::{self, below};

/// The engine's columns, in canonical order.
pub const CANONICAL_COLUMNS: [&str; 10] = [
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

/// Columns added by [`GenConfig::extra_columns`]; the engine must ignore them.
pub const EXTRA_COLUMNS: [&str; 2] = ["sales_rep", "notes"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    SalesRep,
    Notes,
}

impl Col {
    const ALL: [Col; 12] = [
        Col::ClientId,
        Col::ClientName,
        Col::OrderId,
        Col::ProductId,
        Col::ProductDescription,
        Col::ProductPrice,
        Col::ProductCcf,
        Col::ProductVolume,
        Col::Channel,
        Col::Status,
        Col::SalesRep,
        Col::Notes,
    ];

    fn name(self) -> &'static str {
        let i = self as usize;
        if i < 10 {
            CANONICAL_COLUMNS[i]
        } else {
            EXTRA_COLUMNS[i - 10]
        }
    }
}

/// Column order, header bytes and line end of one file.
pub(crate) struct Layout {
    pub cols: Vec<Col>,
    /// Header record including its line end (no BOM).
    pub header: Vec<u8>,
    pub eol: &'static [u8],
}

impl Layout {
    pub(crate) fn build(cfg: &GenConfig) -> Layout {
        let mut rng = rng::stream(cfg.seed, rng::LAYOUT_STREAM);
        let n = if cfg.extra_columns { 12 } else { 10 };
        let mut cols = Col::ALL[..n].to_vec();
        if cfg.shuffle_columns {
            cols.shuffle(&mut rng);
        }
        let eol: &'static [u8] = if cfg.crlf { b"\r\n" } else { b"\n" };
        let mut header = Vec::new();
        for (i, col) in cols.iter().enumerate() {
            if i > 0 {
                header.push(b',');
            }
            if cfg.header_case_noise {
                push_noisy_name(&mut rng, col.name(), &mut header);
            } else {
                header.extend_from_slice(col.name().as_bytes());
            }
        }
        header.extend_from_slice(eol);
        Layout { cols, header, eol }
    }
}

/// ` Client_ID `, `PRODUCT_PRICE`, `  status`: same name after trim+lowercase.
fn push_noisy_name(rng: &mut rng::Rng, name: &str, out: &mut Vec<u8>) {
    let pad = |rng: &mut rng::Rng, out: &mut Vec<u8>| {
        out.extend(std::iter::repeat_n(b' ', below(rng, 3) as usize))
    };
    pad(rng, out);
    let style = below(rng, 4);
    let mut word_start = true;
    for b in name.bytes() {
        let c = match style {
            0 => b.to_ascii_uppercase(),
            1 if word_start => b.to_ascii_uppercase(),
            2 if below(rng, 2) == 0 => b.to_ascii_uppercase(),
            _ => b,
        };
        out.push(c);
        word_start = b == b'_';
    }
    // Title style: make the ids look like `Client_ID`.
    if style == 1 && name.ends_with("_id") {
        let len = out.len();
        out[len - 1] = b'D';
    }
    pad(rng, out);
}

/// One order line, before rendering. Small and `Copy` so originals can be
/// kept per block and re-rendered for key conflicts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line {
    pub order_id: u64,
    pub client: u32,
    pub product: u32,
    pub ccf: u32,
    /// Index into [`CHANNELS`] flattened: `channel * 3 + spelling`.
    pub channel: u8,
    /// Index into [`STATUSES`] flattened: `status * 3 + spelling`.
    pub status: u8,
    pub rep: u8,
    pub note: u8,
}

/// Deviations from the clean rendering of a [`Line`], for dirty rows.
#[derive(Clone, Copy, Default)]
pub(crate) struct Patch<'a> {
    /// Write these bytes verbatim instead of this column's value.
    pub replace: Option<(Col, &'a [u8])>,
    /// Leave this column out (one field missing).
    pub drop: Option<Col>,
    /// Append this as one more field.
    pub extra: Option<&'a [u8]>,
    /// Leave off the line end (the unterminated tail row).
    pub no_eol: bool,
}

/// Appends one record to `out`.
#[inline]
pub(crate) fn render(
    out: &mut Vec<u8>,
    layout: &Layout,
    cat: &Catalog,
    line: &Line,
    patch: &Patch,
) {
    let mut num = itoa::Buffer::new();
    let mut first = true;
    for &col in &layout.cols {
        if patch.drop == Some(col) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        if let Some((c, bytes)) = patch.replace
            && c == col
        {
            out.extend_from_slice(bytes);
            continue;
        }
        let value: &[u8] = match col {
            Col::ClientId => num.format(cat.client_ids[line.client as usize]).as_bytes(),
            Col::ClientName => cat.client_fields.get(line.client),
            Col::OrderId => num.format(line.order_id).as_bytes(),
            Col::ProductId => num
                .format(cat.product_ids[line.product as usize])
                .as_bytes(),
            Col::ProductDescription => cat.product_fields.get(line.product),
            Col::ProductPrice => cat.prices.get(line.product),
            Col::ProductCcf => num.format(line.ccf).as_bytes(),
            Col::ProductVolume => cat.volumes.get(line.product),
            Col::Channel => CHANNELS[line.channel as usize / 3][line.channel as usize % 3],
            Col::Status => STATUSES[line.status as usize / 3][line.status as usize % 3],
            Col::SalesRep => SALES_REPS[line.rep as usize],
            Col::Notes => NOTES[line.note as usize],
        };
        out.extend_from_slice(value);
    }
    if let Some(extra) = patch.extra {
        out.push(b',');
        out.extend_from_slice(extra);
    }
    if !patch.no_eol {
        out.extend_from_slice(layout.eol);
    }
}
