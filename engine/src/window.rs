//! Splitting a window of input into ranges parsed in parallel, with exact record boundaries.
//!
//! Each range after the first starts at a *guessed* record start (the line after its nominal
//! start). Ranges are parsed in parallel; then, in order, each guess is checked against where the
//! previous range really ended. A wrong guess (the nominal start fell inside a quoted field that
//! holds a newline) is repaired by parsing that range again from the true boundary, so the result
//! is always exactly that of one sequential pass, for any range size.

use rayon::prelude::*;

use crate::chunk::{ChunkRows, ParseCtx, guess_record_start, parse_range};

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
    let end = if eof {
        buf.len()
    } else {
        buf.len() - (ctx.max_record + 1)
    };
    assert!(end > start || eof, "window too small for the record limit");
    let range_bytes = range_bytes.max(1);
    let bounds: Vec<(usize, usize)> = (start..end.max(start))
        .step_by(range_bytes)
        .map(|s| (s, (s + range_bytes).min(end)))
        .collect();
    let mut ranges: Vec<ChunkRows> = bounds
        .par_iter()
        .enumerate()
        .map(|(i, &(s, e))| {
            let from = if i == 0 {
                s
            } else {
                guess_record_start(buf, s)
            };
            parse_range(ctx, buf, from.min(e.max(from)), e, eof)
        })
        .collect();
    let mut repaired = 0;
    for i in 1..ranges.len() {
        let true_start = ranges[i - 1].next;
        if ranges[i].start != true_start {
            ranges[i] = parse_range(ctx, buf, true_start, bounds[i].1, eof);
            repaired += 1;
        }
    }
    let next = ranges.last().map_or(start, |r| r.next);
    ParsedWindow {
        ranges,
        next,
        repaired,
    }
}
