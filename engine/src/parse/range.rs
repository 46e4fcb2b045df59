//! Parsing one byte range of the input into typed columns and quarantined rows.
//!
//! A range starts at a record start and owns every record whose first byte (counting any blank
//! lines before it) lies before its nominal end; the last record may run past that end. Records
//! are found with simd-csv, then re-read with the strict field splitter ([`crate::parse::fields`]).
//! When a record's quoting is broken and it spans several lines (a stray or unclosed quote that
//! swallowed the lines after it), only its first line is quarantined and parsing resumes on the
//! next line, so the rows after a bad quote are never lost.

use memchr::{memchr, memchr_iter};
use simd_csv::TotalReaderBuilder;
use xxhash_rust::xxh3::xxh3_64;

use super::fields::{
    FieldSpan, QuoteError, field_text, record_end, split_fields, split_fields_counting_newlines,
};
use super::header::HeaderMap;
use super::number::{
    NumError, checked_total, parse_decimal, parse_decimal_at, parse_positive_int,
    parse_positive_int_at, trim,
};
use super::reason::Reason;
use super::rules::{Channels, Col, lookup_status};
use crate::dedup::keys::{KeyRow, ShardedKeys, key_hash};

/// What every range parser needs to know about the file.
pub(crate) struct ParseCtx<'a> {
    pub header: &'a HeaderMap,
    pub channels: &'a Channels,
    pub max_record: usize,
}

/// A string column under construction: Arrow's offsets + values layout.
#[derive(Default)]
pub(crate) struct StrCol {
    pub offsets: Vec<i32>,
    pub values: Vec<u8>,
}

impl StrCol {
    pub(crate) fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrCol {
            offsets,
            values: Vec::with_capacity(bytes),
        }
    }
    #[inline]
    pub(crate) fn push(&mut self, s: &[u8]) {
        self.values.extend_from_slice(s);
        self.offsets.push(self.values.len() as i32);
    }
}

/// A rejected row, before its line number is made absolute.
pub(crate) struct BadRow {
    pub line_rel: u64,
    pub reason: Reason,
    pub detail: String,
    pub raw: Vec<u8>,
}

/// The valid rows of a range, column by column, plus everything needed to deduplicate them.
#[derive(Default)]
pub(crate) struct ValidRows {
    pub client_id: Vec<i64>,
    pub order_id: Vec<i64>,
    pub product_id: Vec<i64>,
    pub ccf: Vec<i64>,
    pub price: Vec<i64>,
    pub volume: Vec<i64>,
    pub total_price: Vec<i64>,
    pub total_volume: Vec<i64>,
    pub client_name: StrCol,
    pub description: StrCol,
    /// Position in the configured channels / in [`crate::parse::rules::STATUSES`].
    pub channel: Vec<u8>,
    pub status: Vec<u8>,
    /// Newlines between the range start and the record's first byte.
    pub line_rel: Vec<u64>,
    /// Where the record's text is (offset in the window buffer, length), for conflict reports.
    pub raw: Vec<(usize, u32)>,
    /// What dedup needs of each row, by dedup shard, in file order: a shard reads its rows in
    /// one sequential sweep instead of gathering them from every column.
    pub keys: ShardedKeys,
}

impl ValidRows {
    pub fn len(&self) -> usize {
        self.order_id.len()
    }
}

/// Everything a range produced.
pub(crate) struct ChunkRows {
    /// Where parsing started (a record start) and where the next range must start.
    pub start: usize,
    pub next: usize,
    /// Newlines consumed in `start..next`.
    pub newlines: u64,
    /// Data records seen (not counting blank lines).
    pub records: u64,
    pub blank_lines: u64,
    pub valid: ValidRows,
    pub bad: Vec<BadRow>,
    /// A file-level problem found in this range (relative line).
    pub line_too_long: Option<u64>,
}

/// The record start at or after `pos`: just after the first line end at or after `pos - 1`.
/// A guess: it is wrong when `pos` falls inside a quoted field that holds a newline, which the
/// caller detects and repairs by re-parsing from the true boundary.
pub(crate) fn guess_record_start(buf: &[u8], pos: usize) -> usize {
    if buf[pos - 1] == b'\n' {
        return pos;
    }
    memchr(b'\n', &buf[pos..]).map_or(buf.len(), |k| pos + k + 1)
}

/// Parses the records of `buf` starting at `start` (a record start, preceded by a line end)
/// whose first byte is before `nominal_end`. `eof` says whether `buf` ends where the input ends.
pub(crate) fn parse_range(
    ctx: &ParseCtx<'_>,
    buf: &[u8],
    start: usize,
    nominal_end: usize,
    eof: bool,
) -> ChunkRows {
    let expected_rows = nominal_end.saturating_sub(start) / 64 + 16;
    let mut out = ChunkRows {
        start,
        next: start,
        newlines: 0,
        records: 0,
        blank_lines: 0,
        valid: ValidRows::with_capacity(expected_rows),
        bad: Vec::new(),
        line_too_long: None,
    };
    let mut row = RowParser::new(ctx);
    let limit = buf.len();
    let mut pos = start;
    // After a bad record, read with a short budget so a run of bad lines costs linear time.
    let mut recovering = false;
    'readers: while pos < nominal_end {
        let budget = if recovering { 0 } else { nominal_end - pos } + ctx.max_record + 1;
        let slice_end = limit.min(pos + budget);
        let slice_is_eof = eof && slice_end == limit;
        // Start one byte early, on the previous line end: simd-csv skips it as a blank line,
        // and can never mistake the record's first bytes for a byte-order mark. The reader
        // splits the slice in place (a `Splitter` copies its input into a buffer first). Its
        // first record is read as a header: with headers off it would read that record, then
        // split again from the start with whatever quote state the read left.
        let base = pos - 1;
        let mut reader = TotalReaderBuilder::new()
            .has_headers(true)
            .from_bytes(&buf[base..slice_end]);
        let mut first = true;
        loop {
            if pos >= nominal_end {
                break 'readers;
            }
            let found = if std::mem::take(&mut first) {
                // A record has at least one field.
                !reader.byte_headers().is_empty()
            } else {
                reader.split_record().is_some()
            };
            if !found {
                // Only blank lines up to the end of the slice.
                let blank = memchr_iter(b'\n', &buf[pos..slice_end]).count() as u64;
                out.newlines += blank;
                out.blank_lines += blank;
                pos = slice_end;
                if slice_is_eof {
                    break 'readers;
                }
                continue 'readers;
            }
            let mut record_end_at = base + reader.position() as usize;
            let mut content_start = pos;
            while content_start < record_end_at && matches!(buf[content_start], b'\n' | b'\r') {
                if buf[content_start] == b'\n' {
                    out.newlines += 1;
                    out.blank_lines += 1;
                }
                content_start += 1;
            }
            let mut restart_reader = false;
            if record_end_at == slice_end && !slice_is_eof {
                // The slice ran out inside this record, or exactly at its end: settle it exactly,
                // looking no further than the record limit.
                restart_reader = true;
                let longest = content_start + ctx.max_record + 2;
                let probe_end = limit.min(longest);
                record_end_at = match record_end(buf, content_start, probe_end) {
                    Some(e) => e,
                    // Longer than the limit, wherever the window ends.
                    None if probe_end == longest => longest,
                    // The last record, without a final newline.
                    None if eof => limit,
                    None => {
                        // It runs past this window (only possible when it starts after the
                        // range's nominal end): the next window starts with it.
                        pos = content_start;
                        break 'readers;
                    }
                };
            } else if buf[record_end_at - 1] != b'\n' && record_end_at < slice_end {
                // simd-csv's `\r`-after-quote quirk (see `fields::record_end`): redo this record
                // exactly and restart the splitter after it.
                restart_reader = true;
                record_end_at = record_end(buf, content_start, slice_end).unwrap_or(slice_end);
            }
            let terminated = buf[record_end_at - 1] == b'\n';
            let mut content_end = record_end_at - terminated as usize;
            if content_end > content_start && buf[content_end - 1] == b'\r' {
                content_end -= 1;
            }
            let record = &buf[content_start..content_end];
            let line_rel = out.newlines;
            out.records += 1;
            if record.len() > ctx.max_record {
                match split_first_line(record) {
                    Some(first) if first.len() <= ctx.max_record => {
                        out.bad.push(row.bad_line(first, line_rel));
                        out.newlines += 1;
                        pos = content_start + memchr(b'\n', record).unwrap() + 1;
                        recovering = true;
                        continue 'readers;
                    }
                    _ => {
                        out.line_too_long = Some(line_rel);
                        break 'readers;
                    }
                }
            }
            match row.parse(record) {
                Ok(()) => row.push_valid(&mut out.valid, record, content_start, line_rel),
                Err(Rejection::Quoting(_)) if memchr(b'\n', record).is_some() => {
                    // A broken quote swallowed the lines after it: keep only its first line.
                    let first = split_first_line(record).unwrap();
                    out.bad.push(row.bad_line(first, line_rel));
                    out.newlines += 1;
                    pos = content_start + memchr(b'\n', record).unwrap() + 1;
                    recovering = true;
                    continue 'readers;
                }
                Err(rejection) => out.bad.push(row.bad_record(rejection, record, line_rel)),
            }
            debug_assert_eq!(
                row.newlines_inside as usize,
                memchr_iter(b'\n', record).count(),
                "a record's newlines are all inside its quoted fields"
            );
            out.newlines += u64::from(row.newlines_inside);
            out.newlines += terminated as u64;
            pos = record_end_at;
            recovering = false;
            if restart_reader {
                continue 'readers;
            }
        }
    }
    out.next = pos.min(limit).max(start);
    out
}

/// The first physical line of a multi-line record (without its `\r\n`), or `None` when the record
/// has no line end within it.
fn split_first_line(record: &[u8]) -> Option<&[u8]> {
    let k = memchr(b'\n', record)?;
    let line = &record[..k];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

pub(crate) enum Rejection {
    Quoting(QuoteError),
    FieldCount(usize),
    Utf8,
    Rule(Reason, &'static str, NumOrText),
}

pub(crate) enum NumOrText {
    Num(NumError),
    Empty,
    Unknown,
    Overflow,
}

/// The values of one valid row, borrowed from the record until they are pushed.
struct Parsed {
    client_id: i64,
    order_id: i64,
    product_id: i64,
    price: i64,
    ccf: i64,
    volume: i64,
    total_price: i64,
    total_volume: i64,
    channel: u8,
    status: u8,
}

/// Reusable per-range state: field spans and scratch buffers, so no row allocates.
struct RowParser<'c> {
    ctx: &'c ParseCtx<'c>,
    spans: Vec<FieldSpan>,
    name_scratch: Vec<u8>,
    desc_scratch: Vec<u8>,
    other_scratch: Vec<u8>,
    fingerprint_buf: Vec<u8>,
    parsed: Parsed,
    /// Newlines inside the record just parsed (in its quoted fields).
    newlines_inside: u32,
    /// The client name and description of the record just parsed, trimmed.
    name: TextAt,
    desc: TextAt,
}

/// Where a text field's trimmed value is: in the record, or (when it had to be unescaped) in
/// a scratch buffer. Validation finds it once and the row's columns copy it from there.
#[derive(Clone, Copy)]
enum TextAt {
    Record(u32, u32),
    Scratch(u32, u32),
}

impl TextAt {
    #[inline(always)]
    fn of(record: &[u8], field: FieldSpan, scratch: &mut Vec<u8>) -> Self {
        if field.escaped {
            // An escaped field's text is always unescaped into `scratch`.
            field_text(record, field, scratch);
            let (start, end) = trim_range(scratch, 0, scratch.len() as u32);
            TextAt::Scratch(start, end)
        } else {
            let (start, end) = trim_range(record, field.start, field.end);
            TextAt::Record(start, end)
        }
    }

    #[inline]
    fn is_empty(self) -> bool {
        let (TextAt::Record(start, end) | TextAt::Scratch(start, end)) = self;
        start == end
    }

    #[inline]
    fn text<'a>(self, record: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match self {
            TextAt::Record(start, end) => &record[start as usize..end as usize],
            TextAt::Scratch(start, end) => &scratch[start as usize..end as usize],
        }
    }
}

/// `buf[start..end]` without the spaces and tabs around it (as [`trim`]), as a range.
#[inline]
fn trim_range(buf: &[u8], mut start: u32, mut end: u32) -> (u32, u32) {
    while start < end && matches!(buf[start as usize], b' ' | b'\t') {
        start += 1;
    }
    while end > start && matches!(buf[end as usize - 1], b' ' | b'\t') {
        end -= 1;
    }
    (start, end)
}

impl<'c> RowParser<'c> {
    fn new(ctx: &'c ParseCtx<'c>) -> Self {
        RowParser {
            ctx,
            spans: Vec::with_capacity(ctx.header.field_count + 1),
            name_scratch: Vec::new(),
            desc_scratch: Vec::new(),
            other_scratch: Vec::new(),
            fingerprint_buf: Vec::with_capacity(256),
            parsed: Parsed {
                client_id: 0,
                order_id: 0,
                product_id: 0,
                price: 0,
                ccf: 0,
                volume: 0,
                total_price: 0,
                total_volume: 0,
                channel: 0,
                status: 0,
            },
            newlines_inside: 0,
            name: TextAt::Record(0, 0),
            desc: TextAt::Record(0, 0),
        }
    }

    /// Applies every rule, in contract order, stopping at the first failure.
    #[inline]
    fn parse(&mut self, record: &[u8]) -> Result<(), Rejection> {
        self.newlines_inside = match split_fields_counting_newlines(record, &mut self.spans) {
            Ok(newlines) => newlines,
            Err(e) => {
                // Rare: count them the slow way (a stray quote can hide one from the splitter).
                self.newlines_inside = memchr_iter(b'\n', record).count() as u32;
                return Err(Rejection::Quoting(e));
            }
        };
        let header = self.ctx.header;
        if self.spans.len() != header.field_count {
            return Err(Rejection::FieldCount(self.spans.len()));
        }
        // Nearly every record is ASCII, which is cheaper to confirm than UTF-8.
        if !super::fields::is_ascii(record) && std::str::from_utf8(record).is_err() {
            return Err(Rejection::Utf8);
        }
        let spans = &self.spans;
        // One function per parser, each inlined whole: the row's six numbers are a few
        // instructions each on their fast path.
        #[inline(always)]
        fn int(record: &[u8], span: FieldSpan, scratch: &mut Vec<u8>) -> Result<i64, NumError> {
            if span.escaped {
                // Rare: an escaped numeric field.
                parse_positive_int(field_text(record, span, scratch))
            } else {
                // In place: the record's bytes after the field let it be read a word at a time.
                parse_positive_int_at(record, span.start as usize, span.end as usize)
            }
        }
        #[inline(always)]
        fn dec(record: &[u8], span: FieldSpan, scratch: &mut Vec<u8>) -> Result<i64, NumError> {
            if span.escaped {
                parse_decimal(field_text(record, span, scratch))
            } else {
                parse_decimal_at(record, span.start as usize, span.end as usize)
            }
        }
        let field = |c: Col| header.field(spans, c);
        use Reason::*;
        let p = &mut self.parsed;
        let s = &mut self.other_scratch;
        let rule = |r, col, e| Rejection::Rule(r, col, NumOrText::Num(e));
        p.client_id = int(record, field(Col::ClientId), s)
            .map_err(|e| rule(InvalidClientId, "client_id", e))?;
        self.name = TextAt::of(
            record,
            header.field(spans, Col::ClientName),
            &mut self.name_scratch,
        );
        if self.name.is_empty() {
            return Err(Rejection::Rule(
                EmptyClientName,
                "client_name",
                NumOrText::Empty,
            ));
        }
        p.order_id =
            int(record, field(Col::OrderId), s).map_err(|e| rule(InvalidOrderId, "order_id", e))?;
        p.product_id = int(record, field(Col::ProductId), s)
            .map_err(|e| rule(InvalidProductId, "product_id", e))?;
        self.desc = TextAt::of(
            record,
            header.field(spans, Col::ProductDescription),
            &mut self.desc_scratch,
        );
        if self.desc.is_empty() {
            return Err(Rejection::Rule(
                EmptyProductDescription,
                "product_description",
                NumOrText::Empty,
            ));
        }
        p.price = dec(record, field(Col::ProductPrice), s)
            .map_err(|e| rule(InvalidProductPrice, "product_price", e))?;
        p.ccf = int(record, field(Col::ProductCcf), s)
            .map_err(|e| rule(InvalidProductCcf, "product_ccf", e))?;
        p.volume = dec(record, field(Col::ProductVolume), s)
            .map_err(|e| rule(InvalidProductVolume, "product_volume", e))?;
        if p.volume == 0 {
            return Err(rule(InvalidProductVolume, "product_volume", NumError::Zero));
        }
        let channel = trim(field_text(record, header.field(spans, Col::Channel), s));
        p.channel = self.ctx.channels.lookup(channel).ok_or(Rejection::Rule(
            UnknownChannel,
            "point_of_sale_channel",
            NumOrText::Unknown,
        ))?;
        let status = trim(field_text(record, header.field(spans, Col::Status), s));
        p.status = lookup_status(status).ok_or(Rejection::Rule(
            UnknownStatus,
            "status",
            NumOrText::Unknown,
        ))?;
        let overflow = || Rejection::Rule(TotalOverflow, "product_ccf", NumOrText::Overflow);
        p.total_price = checked_total(p.price, p.ccf).ok_or_else(overflow)?;
        p.total_volume = checked_total(p.volume, p.ccf).ok_or_else(overflow)?;
        Ok(())
    }

    /// Appends the row just parsed by [`RowParser::parse`].
    #[inline]
    fn push_valid(&mut self, v: &mut ValidRows, record: &[u8], at: usize, line_rel: u64) {
        let name = self.name.text(record, &self.name_scratch);
        let desc = self.desc.text(record, &self.desc_scratch);
        let p = &self.parsed;
        let fp = &mut self.fingerprint_buf;
        fp.clear();
        for x in [
            p.client_id,
            p.order_id,
            p.product_id,
            p.price,
            p.ccf,
            p.volume,
        ] {
            fp.extend_from_slice(&x.to_le_bytes());
        }
        fp.extend_from_slice(&[p.channel, p.status]);
        fp.extend_from_slice(&(name.len() as u32).to_le_bytes());
        fp.extend_from_slice(name);
        fp.extend_from_slice(desc);
        let row = v.len() as u32;
        v.keys.push(KeyRow {
            order_id: p.order_id,
            product_id: p.product_id,
            key_hash: key_hash(p.order_id, p.product_id),
            fingerprint: xxh3_64(fp),
            line_rel,
            row,
        });
        v.client_id.push(p.client_id);
        v.order_id.push(p.order_id);
        v.product_id.push(p.product_id);
        v.price.push(p.price);
        v.ccf.push(p.ccf);
        v.volume.push(p.volume);
        v.total_price.push(p.total_price);
        v.total_volume.push(p.total_volume);
        v.client_name.push(name);
        v.description.push(desc);
        v.channel.push(p.channel);
        v.status.push(p.status);
        v.line_rel.push(line_rel);
        v.raw.push((at, record.len() as u32));
    }

    fn bad_record(&self, rejection: Rejection, record: &[u8], line_rel: u64) -> BadRow {
        let (reason, detail) = match rejection {
            Rejection::Quoting(QuoteError::Stray) => (
                Reason::BadQuoting,
                "a quote inside an unquoted field, or text after a closing quote".into(),
            ),
            Rejection::Quoting(QuoteError::Unterminated) => (
                Reason::UnterminatedQuote,
                "a quoted field is never closed".into(),
            ),
            Rejection::FieldCount(n) => (
                Reason::FieldCount,
                format!("{n} fields, the header has {}", self.ctx.header.field_count),
            ),
            Rejection::Utf8 => {
                let at = std::str::from_utf8(record)
                    .err()
                    .map_or(0, |e| e.valid_up_to());
                (
                    Reason::InvalidUtf8,
                    format!("invalid UTF-8 at byte {at} of the row"),
                )
            }
            Rejection::Rule(reason, column, what) => {
                let value = self.value_of(record, column);
                let detail = match what {
                    NumOrText::Num(e) => format!("{column} {e}: {value:?}"),
                    NumOrText::Empty => format!("{column} is empty"),
                    NumOrText::Unknown if column == "status" => format!(
                        "status {value:?} is not one of {}",
                        crate::parse::rules::STATUSES.map(|s| s.1).join(", ")
                    ),
                    NumOrText::Unknown => format!(
                        "point_of_sale_channel {value:?} is not one of {}",
                        self.ctx.channels.names().join(", ")
                    ),
                    NumOrText::Overflow => {
                        "a total (price or volume × units) exceeds DECIMAL(18,4)".into()
                    }
                };
                (reason, detail)
            }
        };
        BadRow {
            line_rel,
            reason,
            detail,
            raw: record.to_vec(),
        }
    }

    /// A line that starts a record whose quoting is broken.
    fn bad_line(&self, line: &[u8], line_rel: u64) -> BadRow {
        let mut spans = Vec::new();
        let rejection = match split_fields(line, &mut spans) {
            Err(e) => Rejection::Quoting(e),
            Ok(()) => Rejection::Quoting(QuoteError::Unterminated),
        };
        self.bad_record(rejection, line, line_rel)
    }

    fn value_of(&self, record: &[u8], column: &str) -> String {
        let Some(c) = crate::parse::rules::REQUIRED_COLUMNS
            .iter()
            .position(|&n| n == column)
        else {
            return String::new();
        };
        let span = self.spans[self.ctx.header.index[c]];
        let raw = &record[span.start as usize..span.end as usize];
        let mut text = String::from_utf8_lossy(raw).into_owned();
        if text.len() > 64 {
            let cut = (0..=64)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        text
    }
}

impl ValidRows {
    fn with_capacity(rows: usize) -> Self {
        ValidRows {
            client_id: Vec::with_capacity(rows),
            order_id: Vec::with_capacity(rows),
            product_id: Vec::with_capacity(rows),
            ccf: Vec::with_capacity(rows),
            price: Vec::with_capacity(rows),
            volume: Vec::with_capacity(rows),
            total_price: Vec::with_capacity(rows),
            total_volume: Vec::with_capacity(rows),
            client_name: StrCol::with_capacity(rows, rows * 16),
            description: StrCol::with_capacity(rows, rows * 20),
            channel: Vec::with_capacity(rows),
            status: Vec::with_capacity(rows),
            line_rel: Vec::with_capacity(rows),
            raw: Vec::with_capacity(rows),
            keys: ShardedKeys::with_capacity(rows),
        }
    }
}
