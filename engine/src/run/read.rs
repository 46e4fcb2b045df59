//! Reading an input window by window: a memory map (its pages released behind the run) or a
//! stream read into two buffers in turn, a gzip stream capped at its allowed expansion.

use std::io::Read;
use std::time::Instant;

use super::context::{Processed, RunContext};
use super::outcome::Progress;
use super::pipeline::{Done, Pipeline, WindowBytes};
use crate::error::{Error, StorageError};
use crate::lake::manifest::SourceInfo;
use crate::lake::storage::{InputBytes, Source};
use crate::parse::header::read_header;

/// Header, windows, writers: everything between opening the input and publishing.
pub(super) fn process(
    cx: &RunContext<'_>,
    input: &dyn Source,
    source: &SourceInfo,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Processed, Error> {
    let max_record = cx.options.max_record_bytes;
    let window_bytes = cx.options.window_bytes(cx.threads);
    let total = (!source.gzip).then_some(source.size_bytes);
    match input.open()? {
        InputBytes::Empty => Err(Error::EmptyFile),
        InputBytes::Mapped(map) => {
            let header_clock = Instant::now();
            let header = read_header(&map, true, max_record)?;
            let mut p = Pipeline::new(cx, &header, header_clock, total)?;
            let mut start = header.data_start;
            let len = map.len();
            while start < len {
                let limit = len.min(start + window_bytes + max_record + 1);
                let eof = limit == len;
                let (next, done) = p.window(WindowBytes::Mapped(&map[..limit]), start, eof)?;
                if let Some(done) = done {
                    release_pages(&map, done.start, done.next);
                }
                start = next;
                progress(Progress {
                    bytes_done: start as u64,
                    bytes_total: total,
                    rows_read: p.rows_read(),
                });
                if eof {
                    break;
                }
            }
            p.finish(len as u64)
        }
        InputBytes::Stream(reader) => {
            let mut reader = if source.gzip {
                let options = cx.options;
                let limit = (source.size_bytes.saturating_mul(options.max_gzip_ratio))
                    .max(options.gzip_allowance_bytes);
                Box::new(Capped {
                    inner: reader,
                    read: 0,
                    allowance: Expanded {
                        limit,
                        compressed: source.size_bytes,
                        ratio: options.max_gzip_ratio,
                    },
                }) as Box<dyn Read + Send>
            } else {
                reader
            };
            let src = (source.uri.as_str(), source.gzip);
            let capacity = window_bytes + max_record + 2;
            let mut buf = Vec::with_capacity(capacity);
            let mut eof = fill(&mut reader, &mut buf, window_bytes + max_record + 1, src)?;
            let header_clock = Instant::now();
            let header = read_header(&buf, eof, max_record)?;
            let mut p = Pipeline::new(cx, &header, header_clock, total)?;
            let mut start = header.data_start;
            let mut consumed: u64 = 0;
            // Two buffers take turns: one is read into while the other's window is assembled.
            let mut spare = Vec::with_capacity(capacity);
            loop {
                if !eof {
                    eof = fill(
                        &mut reader,
                        &mut buf,
                        start + window_bytes + max_record + 1,
                        src,
                    )?;
                }
                if start >= buf.len() && eof {
                    break;
                }
                let len = buf.len();
                let bytes = WindowBytes::Owned(std::mem::take(&mut buf));
                let (next, done) = p.window(bytes, start, eof)?;
                if let Some(Done {
                    bytes: WindowBytes::Owned(done),
                    ..
                }) = done
                {
                    spare = done;
                }
                progress(Progress {
                    bytes_done: consumed + next as u64,
                    bytes_total: total,
                    rows_read: p.rows_read(),
                });
                if eof {
                    consumed += len as u64;
                    break;
                }
                // The next window starts with the line end before `next`: every range starts
                // just after one.
                consumed += (next - 1) as u64;
                buf = std::mem::take(&mut spare);
                buf.clear();
                buf.extend_from_slice(&p.parsed_bytes()[next - 1..]);
                start = 1;
            }
            p.finish(consumed)
        }
    }
}

/// A decompressed stream that fails with its [`Expanded`] once it has given more than its
/// limit.
struct Capped {
    inner: Box<dyn Read + Send>,
    read: u64,
    allowance: Expanded,
}

/// What a gzip input may expand to; the error [`Capped`] fails with.
#[derive(Debug, Clone, Copy)]
struct Expanded {
    limit: u64,
    compressed: u64,
    ratio: u64,
}

impl std::fmt::Display for Expanded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompressed past {} bytes", self.limit)
    }
}

impl std::error::Error for Expanded {}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.allowance.limit {
            return Err(std::io::Error::other(self.allowance));
        }
        Ok(n)
    }
}

/// Reads until `buf` holds `want` bytes or the stream ends; returns whether it ended.
/// `source` is the input's URI and whether it is gzip, to classify read errors.
fn fill(
    reader: &mut dyn Read,
    buf: &mut Vec<u8>,
    want: usize,
    source: (&str, bool),
) -> Result<bool, Error> {
    let mut len = buf.len();
    if buf.capacity() < want {
        buf.reserve(want - len);
    }
    // Read straight into the window buffer (no intermediate copy).
    buf.resize(want.max(len), 0);
    let result = loop {
        if len >= want {
            break Ok(false);
        }
        match reader.read(&mut buf[len..want]) {
            Ok(0) => break Ok(true),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if source.1 && e.get_ref().is_some_and(|i| i.is::<Expanded>()) => {
                let Expanded {
                    limit,
                    compressed,
                    ratio,
                } = *e
                    .into_inner()
                    .and_then(|i| i.downcast::<Expanded>().ok())
                    .expect("checked above");
                break Err(Error::GzipExpansion {
                    path: source.0.to_string(),
                    limit,
                    compressed,
                    ratio,
                });
            }
            Err(e) => {
                break Err(match StorageError::from_io(e) {
                    Ok(storage) => Error::Storage(storage),
                    Err(e) if source.1 => Error::Gzip {
                        path: source.0.to_string(),
                        source: e,
                    },
                    Err(e) => Error::io(source.0, e),
                });
            }
        }
    };
    buf.truncate(len);
    result
}

/// Drops already-processed pages of the map from this process's resident set, so memory stays
/// bounded by the window, not the file. (The pages stay in the OS page cache.)
fn release_pages(map: &memmap2::Mmap, from: usize, to: usize) {
    const PAGE: usize = 4096;
    let start = from / PAGE * PAGE;
    let end = to / PAGE * PAGE;
    if end > start {
        // SAFETY: the mapping is read-only and file-backed: after MADV_DONTNEED a later access
        // faults the same bytes back in from the file, so no reference observes a change.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}
