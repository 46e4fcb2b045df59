//! Drives block generation on the rayon pool and writes blocks in order.
//!
//! While batch `k` is written on the calling thread, batch `k + 1` is
//! generated on the pool, so writing overlaps generation. Batch sizes follow
//! the pool size, but the bytes never do: each block is a pure function of
//! its index.

use std::io::Write;
use std::ops::Range;

use rayon::prelude::*;

use crate::block::{BLOCK_ROWS, Block, DUPLICATE, Plan, first_order_id, generate_block};
use crate::catalog::Catalog;
use crate::config::{GenConfig, Size};
use crate::expected::{Expected, Tally};
use crate::row::{self, Layout};
use crate::{Error, dirt, rng};

/// A guess used only to size the first batch of a `Size::Bytes` run.
const EST_ROW_BYTES: u64 = 100;

#[derive(Clone, Copy)]
enum Goal {
    /// Normal (non-tail) rows to write.
    Rows(u64),
    /// Stop at the first row boundary at or after this file offset.
    Bytes(u64),
}

struct Writer<'w, W: Write> {
    out: &'w mut W,
    bytes: u64,
    tally: Tally,
}

impl<W: Write> Writer<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.out.write_all(bytes)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Writes rows `..=last` of `block`, minus `strip` trailing bytes.
    fn write_rows(&mut self, block: &Block, last: usize, strip: usize) -> Result<(), Error> {
        let end = block.row_ends[last] as usize - strip;
        self.write(&block.buf[..end])?;
        self.tally.add(&block.kinds[..=last]);
        Ok(())
    }
}

pub(crate) fn run<W: Write>(cfg: &GenConfig, out: &mut W) -> Result<Expected, Error> {
    cfg.validate()?;
    let catalog = Catalog::build(cfg.seed, cfg.clients, cfg.products);
    let layout = Layout::build(cfg);
    let plan = Plan::new(cfg, &catalog, &layout);
    let tail = cfg.dirt.unterminated_quote_at_end;
    // Without a final newline the last record loses its line end, unless the
    // unterminated tail row (which never has one) follows it.
    let strip = if !cfg.final_newline && !tail {
        layout.eol.len()
    } else {
        0
    };

    let mut head = Vec::new();
    if cfg.bom {
        head.extend_from_slice(b"\xEF\xBB\xBF");
    }
    head.extend_from_slice(&layout.header);
    let (goal, want_tail) = match cfg.size {
        Size::Rows(n) => (Goal::Rows(n - u64::from(tail && n > 0)), tail && n > 0),
        Size::Bytes(n) => (Goal::Bytes(n), tail),
    };
    let no_rows = match goal {
        Goal::Rows(n) => n == 0,
        Goal::Bytes(n) => head.len() as u64 >= n,
    };

    let mut w = Writer {
        out,
        bytes: 0,
        tally: Tally::default(),
    };
    let next_block = if no_rows {
        head.truncate(head.len() - strip);
        w.write(&head)?;
        0
    } else {
        w.write(&head)?;
        write_blocks(&plan, goal, strip, &mut w)?
    };
    if want_tail {
        let mut rng = rng::stream(cfg.seed, rng::TAIL_STREAM);
        let mut scratch = Vec::new();
        let order_id = first_order_id(cfg.seed, next_block);
        let row = dirt::unterminated_row(&mut rng, &catalog, order_id, &mut scratch);
        let mut buf = Vec::new();
        row::render(&mut buf, &layout, &catalog, &row.line, &row.patch(&scratch));
        w.write(&buf)?;
        w.tally.add_unterminated();
    }
    w.out.flush()?;
    Ok(w.tally.finish(w.bytes, cfg.seed))
}

/// Writes all data blocks; returns the index of the first unused block (its
/// order ids are free for the tail row).
fn write_blocks<W: Write>(
    plan: &Plan,
    goal: Goal,
    strip: usize,
    w: &mut Writer<'_, W>,
) -> Result<u64, Error> {
    let block_rows = u64::from(BLOCK_ROWS);
    let threads = rayon::current_num_threads().max(1) as u64;
    let total_blocks = match goal {
        Goal::Rows(n) => n.div_ceil(block_rows),
        Goal::Bytes(_) => u64::MAX,
    };
    let make = |range: Range<u64>| -> Vec<Block> {
        range
            .into_par_iter()
            .map(|b| {
                let rows = match goal {
                    Goal::Rows(n) => (n - b * block_rows).min(block_rows) as u32,
                    Goal::Bytes(_) => BLOCK_ROWS,
                };
                generate_block(plan, b, rows, strip > 0 && b + 1 == total_blocks)
            })
            .collect()
    };
    // How many blocks to generate next, given `written` bytes so far.
    let batch_len = |next: u64, written: u64, est_block: u64| -> u64 {
        match goal {
            Goal::Rows(_) => threads.min(total_blocks - next),
            Goal::Bytes(n) => n
                .saturating_sub(written)
                .div_ceil(est_block.max(1))
                .clamp(1, threads),
        }
    };

    let mut next = batch_len(0, w.bytes, EST_ROW_BYTES * block_rows);
    let mut batch = make(0..next);
    loop {
        let first_index = next - batch.len() as u64;
        if let Some((pos, last_row)) = find_end(goal, w.bytes, &batch, strip, next == total_blocks)
        {
            for block in &batch[..pos] {
                w.write_rows(block, block.row_ends.len() - 1, 0)?;
            }
            w.write_rows(&batch[pos], last_row, strip)?;
            return Ok(first_index + pos as u64 + 1);
        }
        let batch_bytes: u64 = batch.iter().map(|b| b.buf.len() as u64).sum();
        let est_block = batch_bytes / batch.len() as u64;
        let len = batch_len(next, w.bytes + batch_bytes, est_block);
        let range = next..next + len;
        next += len;

        let mut upcoming = None;
        let mut written = Ok(());
        rayon::in_place_scope(|s| {
            s.spawn(|_| upcoming = Some(make(range)));
            written = batch
                .iter()
                .try_for_each(|b| w.write_rows(b, b.row_ends.len() - 1, 0));
        });
        written?;
        batch = upcoming.expect("spawned batch finished with the scope");
    }
}

/// Where the goal is reached inside `batch`, as (block position, last row).
fn find_end(
    goal: Goal,
    written: u64,
    batch: &[Block],
    strip: usize,
    last_batch: bool,
) -> Option<(usize, usize)> {
    match goal {
        Goal::Rows(_) => last_batch.then(|| {
            let pos = batch.len() - 1;
            (pos, batch[pos].row_ends.len() - 1)
        }),
        Goal::Bytes(target) => {
            let mut at = written;
            for (pos, block) in batch.iter().enumerate() {
                let len = block.buf.len() as u64;
                if at + len < target {
                    at += len;
                    continue;
                }
                let need = (target - at) as usize;
                let mut row = block.row_ends.partition_point(|&e| (e as usize) < need);
                // A duplicate losing its line end would no longer be an
                // exact copy; end on the next non-duplicate row instead.
                while strip > 0 && block.kinds[row] == DUPLICATE && row + 1 < block.kinds.len() {
                    row += 1;
                }
                return Some((pos, row));
            }
            None
        }
    }
}
