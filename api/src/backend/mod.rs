//! Query backends: the same reports over Athena, or over the lake's tables with DataFusion (a
//! local directory, or S3 directly); `choice` says which one the API Lambda serves from.

use std::future::Future;

use crate::error::ApiError;
use crate::reports::{Param, Report};
use crate::value::ResultSet;

pub mod arrow_rows;
pub mod athena;
pub mod athena_values;
pub mod choice;
pub mod embedded;

/// Runs report SQL with bound parameters and returns typed rows. The router is generic over it,
/// so handlers are tested with either backend (or a fake).
pub trait Backend: Send + Sync + 'static {
    /// Runs `report` with `params` bound to `$1`, `$2`… in order.
    fn query(
        &self,
        report: &'static Report,
        params: Vec<Param>,
    ) -> impl Future<Output = Result<ResultSet, ApiError>> + Send;

    /// A short name for logs and `/healthz`.
    fn name(&self) -> &'static str;

    /// Whether the lake it reads has its current state and marts up to date
    /// ([`Report::current`]): reports over every date then read those instead of ranking the
    /// history.
    fn reads_current_state(&self) -> impl Future<Output = bool> + Send {
        async { false }
    }
}
