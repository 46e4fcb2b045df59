//! Splitting a window of input into ranges parsed in parallel, with exact record boundaries.
//!
//! Each range after the first starts at a *guessed* record start (the line after its nominal
//! start). Ranges are parsed in parallel; then, in order, each guess is checked against where the
//! previous range really ended. A wrong guess (the nominal start fell inside a quoted field that
//! holds a newline) is repaired by parsing that range again from the true boundary, so the result
//! is always exactly that of one sequential pass, for any range size.

use rayon::prelude::*;

use crate::error::Error;
use crate::parse::range::{ChunkRows, ParseCtx, guess_record_start, parse_range};

/// How many ranges were re-parsed because their guessed start was wrong.
pub(crate) struct ParsedWindow {
    pub ranges: Vec<ChunkRows>,
    pub next: usize,
    pub repaired: usize,
}

/// Parses the records of `buf` from `start` (a record start, after a line end). Unless `eof`,
/// records starting in the last `max_record + 1` bytes are left for the next window, so every
/// record parsed here is complete or provably too long.
pub(crate) fn parse_window(
    ctx: &ParseCtx<'_>,
    buf: &[u8],
    start: usize,
    eof: bool,
    range_bytes: usize,
) -> ParsedWindow {
    let ranges = Ranges::new(ctx, buf, start, eof, range_bytes);
    let parsed = (0..ranges.len())
        .into_par_iter()
        .map(|i| ranges.parse(ctx, buf, i))
        .collect();
    ranges.finish(ctx, buf, parsed)
}

impl ParsedWindow {
    /// The absolute line of each range's start, given the window's `first_line`, and the line
    /// after the window; a line longer than `max_record` fails the file, saying where.
    pub(crate) fn first_lines(
        &self,
        first_line: u64,
        max_record: usize,
    ) -> Result<(Vec<u64>, u64), Error> {
        let mut first_lines = Vec::with_capacity(self.ranges.len());
        let mut line = first_line;
        for r in &self.ranges {
            if let Some(rel) = r.line_too_long {
                return Err(Error::LineTooLong {
                    line: line + rel,
                    max_bytes: max_record,
                });
            }
            first_lines.push(line);
            line += r.newlines;
        }
        Ok((first_lines, line))
    }
}

/// A window cut into ranges, for callers that schedule the ranges' parsing themselves:
/// [`Ranges::parse`] each one, in any order or thread, then [`Ranges::finish`] with the results
/// in order. [`parse_window`] is the same in one call.
pub(crate) struct Ranges {
    bounds: Vec<(usize, usize)>,
    start: usize,
    eof: bool,
}

impl Ranges {
    /// The ranges of `range_bytes` of the window of `buf` from `start` (see [`parse_window`]).
    pub(crate) fn new(
        ctx: &ParseCtx<'_>,
        buf: &[u8],
        start: usize,
        eof: bool,
        range_bytes: usize,
    ) -> Ranges {
        let end = if eof {
            buf.len()
        } else {
            buf.len() - (ctx.max_record + 1)
        };
        assert!(end > start || eof, "window too small for the record limit");
        let range_bytes = range_bytes.max(1);
        let bounds = (start..end.max(start))
            .step_by(range_bytes)
            .map(|s| (s, (s + range_bytes).min(end)))
            .collect();
        Ranges { bounds, start, eof }
    }

    pub(crate) fn len(&self) -> usize {
        self.bounds.len()
    }

    /// Range `i`, parsed from its guessed first record.
    pub(crate) fn parse(&self, ctx: &ParseCtx<'_>, buf: &[u8], i: usize) -> ChunkRows {
        let (s, e) = self.bounds[i];
        let from = if i == 0 {
            s
        } else {
            guess_record_start(buf, s)
        };
        parse_range(ctx, buf, from.min(e.max(from)), e, self.eof)
    }

    /// The window from its ranges as [`Ranges::parse`] gave them, in order: each guess is
    /// checked against where the previous range really ended, and a wrong one re-parsed.
    pub(crate) fn finish(
        self,
        ctx: &ParseCtx<'_>,
        buf: &[u8],
        mut ranges: Vec<ChunkRows>,
    ) -> ParsedWindow {
        assert_eq!(ranges.len(), self.bounds.len(), "one result per range");
        let mut repaired = 0;
        for i in 1..ranges.len() {
            let true_start = ranges[i - 1].next;
            if ranges[i].start != true_start {
                ranges[i] = parse_range(ctx, buf, true_start, self.bounds[i].1, self.eof);
                repaired += 1;
            }
        }
        let next = ranges.last().map_or(self.start, |r| r.next);
        ParsedWindow {
            ranges,
            next,
            repaired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::header::parse_header;
    use crate::parse::rules::Channels;
    use proptest::prelude::*;

    const HEADER: &str = "client_id,client_name,order_id,product_id,product_description,product_price,product_ccf,product_volume,point_of_sale_channel,status";

    /// One observable outcome per record: (absolute line, what happened).
    type Event = (u64, String);

    /// Every record of `data` (header included), parsed window by window, as `(its first
    /// line, its raw text)`, in file order.
    fn raw_records(data: &[u8], range_bytes: usize, window_bytes: usize) -> Vec<(u64, Vec<u8>)> {
        let header = parse_header(HEADER.as_bytes()).unwrap();
        let channels = Channels::default();
        let ctx = ParseCtx {
            header: &header,
            channels: &channels,
            max_record: 1 << 20,
        };
        let mut out = Vec::new();
        let (mut line, mut start) = (2u64, memchr::memchr(b'\n', data).unwrap() + 1);
        while start < data.len() {
            let limit = data.len().min(start + window_bytes + (1 << 20) + 1);
            let eof = limit == data.len();
            let w = parse_window(&ctx, &data[..limit], start, eof, range_bytes);
            for r in &w.ranges {
                let v = &r.valid;
                for i in 0..v.len() {
                    let (at, len) = (v.raw[i].0, v.raw[i].1 as usize);
                    out.push((line + v.line_rel[i], data[at..at + len].to_vec()));
                }
                out.extend(r.bad.iter().map(|b| (line + b.line_rel, b.raw.clone())));
                line += r.newlines;
            }
            start = w.next;
            if eof {
                break;
            }
        }
        out.sort();
        out
    }

    /// The same, as the `csv` crate reads it: each record's first line and its bytes up to its
    /// line end.
    fn csv_crate_records(data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
        reader.byte_headers().unwrap();
        let mut starts = Vec::new();
        let mut record = csv::ByteRecord::new();
        loop {
            let at = reader.position().clone();
            if !reader.read_byte_record(&mut record).unwrap() {
                break;
            }
            // A record's position is where the reader stood, before any blank lines.
            let mut begin = at.byte() as usize;
            let mut line = at.line();
            while matches!(data.get(begin), Some(b'\r' | b'\n')) {
                line += u64::from(data[begin] == b'\n');
                begin += 1;
            }
            starts.push((line, begin));
        }
        let ends = starts.iter().skip(1).map(|s| s.1).chain([data.len()]);
        let mut out: Vec<(u64, Vec<u8>)> = starts
            .iter()
            .zip(ends)
            .map(|(&(line, begin), end)| {
                let mut raw = &data[begin..end];
                while let [rest @ .., b'\r' | b'\n'] = raw {
                    raw = rest;
                }
                (line, raw.to_vec())
            })
            .collect();
        out.sort();
        out
    }

    /// Parses `data` (header included) window by window like the run driver does, and flattens
    /// every record's outcome with its absolute line number.
    fn events(
        data: &[u8],
        range_bytes: usize,
        window_bytes: usize,
        max_record: usize,
    ) -> (Vec<Event>, u64) {
        let header_end = memchr::memchr(b'\n', data).unwrap() + 1;
        let header = parse_header(HEADER.as_bytes()).unwrap();
        let channels = Channels::default();
        let ctx = ParseCtx {
            header: &header,
            channels: &channels,
            max_record,
        };
        let mut out = Vec::new();
        let mut line = 2u64;
        let mut records = 0u64;
        let mut start = header_end;
        while start < data.len() {
            let limit = data.len().min(start + window_bytes + max_record + 1);
            let eof = limit == data.len();
            let w = parse_window(&ctx, &data[..limit], start, eof, range_bytes);
            for r in &w.ranges {
                if let Some(rel) = r.line_too_long {
                    // The whole file fails: only the error (and where) matters.
                    return (vec![(line + rel, "line_too_long".to_string())], 0);
                }
                records += r.records;
                let v = &r.valid;
                for i in 0..v.len() {
                    let name = &v.client_name.values
                        [v.client_name.offsets[i] as usize..v.client_name.offsets[i + 1] as usize];
                    let desc = &v.description.values
                        [v.description.offsets[i] as usize..v.description.offsets[i + 1] as usize];
                    out.push((
                        line + v.line_rel[i],
                        format!(
                            "ok {} {:?} {} {} {:?} {} {} {} {} {} {:?}",
                            v.client_id[i],
                            String::from_utf8_lossy(name),
                            v.order_id[i],
                            v.product_id[i],
                            String::from_utf8_lossy(desc),
                            v.price[i],
                            v.ccf[i],
                            v.volume[i],
                            v.channel[i],
                            v.status[i],
                            &data[v.raw[i].0..v.raw[i].0 + v.raw[i].1 as usize]
                        ),
                    ));
                }
                for b in &r.bad {
                    out.push((line + b.line_rel, format!("bad {} {:?}", b.reason, b.raw)));
                }
                line += r.newlines;
            }
            start = w.next;
            if eof {
                break;
            }
        }
        out.sort();
        (out, records)
    }

    /// A field: valid values, text with commas/quotes/newlines, and raw garbage.
    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[1-9][0-9]{0,3}",
            2 => "[0-9]{1,3}\\.[0-9]{1,5}",
            2 => prop::sample::select(vec!["Retail", "online", "B2B", "created", "Delivered", "broken", "x"]).prop_map(String::from),
            3 => "[a-c ,\"\n\r]{0,6}",
            1 => Just(String::new()),
        ]
    }

    /// How a field is written: properly quoted (with `""` escapes) or raw (maybe malformed).
    fn record() -> impl Strategy<Value = String> {
        (
            prop::collection::vec((field(), any::<bool>()), 8..12),
            any::<bool>(),
        )
            .prop_map(|(fields, _)| {
                fields
                    .into_iter()
                    .map(|(f, quote)| {
                        if quote {
                            format!("\"{}\"", f.replace('"', "\"\""))
                        } else {
                            f
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
    }

    /// A well-formed record: each field plain (no comma, quote or line end) or quoted with
    /// `""` escapes.
    fn well_formed_record() -> impl Strategy<Value = String> {
        let plain = "[a-zA-Z0-9 .]{0,8}";
        let quoted = "[a-c ,\"\n\r]{0,6}".prop_map(|f| format!("\"{}\"", f.replace('"', "\"\"")));
        prop::collection::vec(prop_oneof![plain.prop_map(String::from), quoted], 8..12)
            .prop_map(|fields| fields.join(","))
    }

    fn file() -> impl Strategy<Value = Vec<u8>> {
        file_of(record())
    }

    fn file_of(record: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec((record, 0u8..10), 0..40),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(records, crlf, final_newline)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut s = format!("{HEADER}{eol}");
                let n = records.len();
                for (i, (r, extra)) in records.into_iter().enumerate() {
                    s.push_str(&r);
                    if extra == 0 {
                        s.push_str(eol); // a blank line
                    }
                    if i + 1 < n || final_newline {
                        s.push_str(eol);
                    }
                }
                s.into_bytes()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Ranges and windows of any size give exactly the sequential result.
        #[test]
        fn ranges_and_windows_match_sequential(
            data in file(),
            range_bytes in 1usize..80,
            window_bytes in 1usize..300,
            max_record in 64usize..200,
        ) {
            let sequential = events(&data, usize::MAX / 4, usize::MAX / 4, max_record);
            let parallel = events(&data, range_bytes, window_bytes, max_record);
            prop_assert_eq!(sequential, parallel);
        }

        /// Against an independent reader: on well-formed files the records, their first
        /// lines and their text are those the `csv` crate reads, whatever the ranges and
        /// windows. (Malformed quoting is where the two readers' recovery rules differ by
        /// design: the fixtures cover it.)
        #[test]
        fn well_formed_records_are_those_the_csv_crate_reads(
            data in file_of(well_formed_record()),
            range_bytes in 1usize..80,
            window_bytes in 1usize..300,
        ) {
            prop_assert_eq!(raw_records(&data, range_bytes, window_bytes), csv_crate_records(&data));
        }

        /// Every record is accounted for: kept or quarantined, never dropped by the splitter.
        #[test]
        fn every_record_is_accounted_for(data in file(), range_bytes in 1usize..80) {
            let (events, records) = events(&data, range_bytes, 1 << 20, 1 << 20);
            prop_assert_eq!(events.len() as u64, records);
        }
    }
}
