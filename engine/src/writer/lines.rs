//! What a run writes `orders` and `fact_orders` with: the engine's encoder ([`StarWriter`]) or,
//! with [`Encoder::Arrow`], one `ArrowWriter` thread per table like every other table.

use std::time::Duration;

use arrow::array::RecordBatch;

use super::options::{Encoder, ParquetOptions};
use super::parts::Destination;
use super::star::{ColumnDone, ColumnQueue, EncodeWork, StarReport, StarWriter};
use super::table::TableWriter;
use crate::error::Error;
use crate::schema::{FACT_ORDERS, ORDERS};

/// The writer of the two tables that hold the run's valid rows. Both kinds are driven the same
/// way: [`LinesWriter::prepare`] each window's batches, run the [`ColumnQueue`]'s tasks in the
/// run's pool, [`LinesWriter::complete`] their results, and [`LinesWriter::finish`].
pub(crate) enum LinesWriter {
    /// The engine's encoder: its column tasks run in the run's pool.
    Engine(Box<StarWriter>),
    /// `ArrowWriter` threads, one per table: no column tasks.
    Arrow {
        orders: TableWriter,
        fact: TableWriter,
    },
}

impl LinesWriter {
    /// A writer into `orders` and `fact`, of the kind `options.encoder` names.
    pub fn new(
        orders: Destination,
        fact: Destination,
        options: ParquetOptions,
    ) -> Result<Self, Error> {
        Ok(match options.encoder {
            Encoder::Engine => {
                LinesWriter::Engine(Box::new(StarWriter::new(orders, fact, options)?))
            }
            Encoder::Arrow => LinesWriter::Arrow {
                orders: TableWriter::spawn(&ORDERS, orders, options.clone()),
                fact: TableWriter::spawn(&FACT_ORDERS, fact, options),
            },
        })
    }

    /// Takes a window's `orders` and `fact_orders` batches (of the same rows); the work their
    /// columns' tasks will do. `ArrowWriter` threads are handed the batches here.
    pub fn prepare(
        &mut self,
        batches: Vec<(RecordBatch, RecordBatch)>,
    ) -> Result<EncodeWork, Error> {
        match self {
            LinesWriter::Engine(star) => star.prepare(batches),
            LinesWriter::Arrow { orders, fact } => {
                for (o, f) in batches {
                    orders.send(o)?;
                    fact.send(f)?;
                }
                Ok(EncodeWork::none())
            }
        }
    }

    /// The columns' tasks for `work`, for the run's pool to take one at a time.
    pub fn column_queue<'a>(&'a mut self, work: &'a EncodeWork) -> ColumnQueue<'a> {
        match self {
            LinesWriter::Engine(star) => star.column_queue(work),
            LinesWriter::Arrow { .. } => ColumnQueue::none(),
        }
    }

    /// Takes the columns' results.
    pub fn complete(&mut self, done: Vec<Result<ColumnDone, Error>>) -> Result<(), Error> {
        match self {
            LinesWriter::Engine(star) => star.complete(done),
            LinesWriter::Arrow { .. } => Ok(()),
        }
    }

    /// Encodes `batches` in the current rayon pool: [`LinesWriter::prepare`], every column's
    /// task, [`LinesWriter::complete`].
    pub fn encode(&mut self, batches: Vec<(RecordBatch, RecordBatch)>) -> Result<(), Error> {
        match self {
            LinesWriter::Engine(star) => star.encode(batches),
            LinesWriter::Arrow { .. } => self.prepare(batches).map(drop),
        }
    }

    /// No more rows: finishes both tables' files and reports them.
    pub fn finish(&mut self) -> Result<StarReport, Error> {
        match self {
            LinesWriter::Engine(star) => star.finish(),
            LinesWriter::Arrow { orders, fact } => {
                let (orders, fact) = (orders.finish(), fact.finish());
                let (orders, fact) = (orders?, fact?);
                Ok(StarReport {
                    orders: orders.files,
                    fact: fact.files,
                    encode_busy: orders.busy + fact.busy,
                    splice_busy: Duration::ZERO,
                })
            }
        }
    }
}
