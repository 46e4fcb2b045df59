//! # duff-dispatcher
//!
//! The Lambda that reacts to every upload. It accepts S3 notifications, EventBridge
//! "Object Created" events, SQS messages wrapping either (answering with partial batch
//! failures), S3 test events, and the scheduled backfill request; for each object it decides:
//!
//! - ignore it (outside the inbox prefix, not `.csv`/`.csv.gz`, inside the lake, not an upload);
//! - skip it (its run manifest exists, or a Batch job for it is still pending: [`ledger`]);
//! - process it here, below the size threshold and with time enough ([`route`]);
//! - or submit an AWS Batch job for it and return ([`batch`]).
//!
//! The handler ([`Dispatcher::handle`]) is plain async code over three small traits
//! ([`Objects`], [`Jobs`], [`Engine`]); [`lambda::connect`] binds them to S3, Batch and the
//! engine. `duff dispatch` and `duff backfill` run the same handler locally.

pub mod backfill;
pub mod batch;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod error;
pub mod event;
pub mod handler;
pub mod key;
pub mod lambda;
mod lazy_lake;
pub mod ledger;
pub mod objects;
pub mod report;
pub mod route;
pub mod sizing;
pub mod traits;

pub use config::{BatchTarget, Config};
pub use dispatch::Dispatcher;
pub use error::DispatchError;
pub use lambda::{AwsDispatcher, Setup, connect, invoke};
pub use report::{ObjectReport, Outcome, Report};
pub use traits::{
    Engine, JobRequest, JobState, Jobs, ObjectInfo, Objects, RunSummary, SubmittedJob,
};
