//! [`Engine`] in this process: the same `duff_engine::run` as `duff run` and the Batch job,
//! streaming the object with ranged GETs, on a blocking thread (the S3 adapters block on the
//! runtime, so they must never run on one of its workers).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::NaiveDate;
use duff_engine::manifest::CostBasis;
use duff_engine::{Lake, RunOptions};
use duff_s3::{S3Source, S3Url, TransferSettings};

use crate::error::DispatchError;
use crate::traits::{Engine, ObjectInfo, RunSummary};

/// Time a run inside the Lambda keeps before its deadline: to stop between windows, abort its
/// staged files, submit the object to Batch and report.
const HANDOVER: Duration = Duration::from_secs(20);

/// Lambda gives one vCPU per 1769 MB of memory (AWS Lambda documentation).
pub const MB_PER_VCPU: f64 = 1769.0;

/// [`Engine`] in this process, reading the object from S3 and committing to `lake`. A run
/// with a deadline stops early enough to hand the object over to Batch (nothing committed).
pub struct InProcessEngine {
    s3: aws_sdk_s3::Client,
    settings: TransferSettings,
    lake: Arc<dyn Lake>,
    options: RunOptions,
}

impl InProcessEngine {
    /// Reads objects with `s3` and `settings` and runs the engine with `options`; each call
    /// sets the run's `pa_date` (and, from its deadline, when to stop).
    pub fn new(
        s3: aws_sdk_s3::Client,
        settings: TransferSettings,
        lake: Arc<dyn Lake>,
        options: RunOptions,
    ) -> InProcessEngine {
        InProcessEngine {
            s3,
            settings,
            lake,
            options,
        }
    }
}

impl InProcessEngine {
    /// `work` on the object (pinned to the ETag that was checked: a replaced object fails as
    /// `object_changed`), on a blocking thread.
    async fn with_source(
        &self,
        object: &ObjectInfo,
        pa_date: NaiveDate,
        work: impl FnOnce(
            &S3Source,
            &dyn Lake,
            &RunOptions,
        ) -> Result<duff_engine::RunOutcome, duff_engine::Error>
        + Send
        + 'static,
    ) -> Result<RunSummary, DispatchError> {
        let url = S3Url {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
        };
        let source = S3Source::head(
            self.s3.clone(),
            self.settings.clone(),
            url,
            Some(&object.etag),
        )
        .await?;
        let lake = self.lake.clone();
        let options = RunOptions {
            pa_date: Some(pa_date),
            ..self.options.clone()
        };
        let outcome = tokio::task::spawn_blocking(move || work(&source, lake.as_ref(), &options))
            .await
            .map_err(|e| DispatchError::Crashed(e.to_string()))??;
        Ok(RunSummary::from_outcome(&outcome))
    }
}

impl Engine for InProcessEngine {
    async fn run(
        &self,
        object: &ObjectInfo,
        pa_date: NaiveDate,
        deadline: Option<SystemTime>,
    ) -> Result<RunSummary, DispatchError> {
        let stop_at = deadline.map(|d| {
            let left = d.duration_since(SystemTime::now()).unwrap_or_default();
            Instant::now() + left.saturating_sub(HANDOVER)
        });
        self.with_source(object, pa_date, move |source, lake, options| {
            let options = RunOptions {
                stop_at,
                ..options.clone()
            };
            duff_engine::run(source, lake, &options, &|_| {})
        })
        .await
    }

    async fn give_up(
        &self,
        object: &ObjectInfo,
        pa_date: NaiveDate,
        attempts: u32,
    ) -> Result<RunSummary, DispatchError> {
        self.with_source(object, pa_date, move |source, lake, options| {
            duff_engine::give_up(source, lake, options, attempts)
        })
        .await
    }
}

/// Transfer settings and engine options for a Lambda of `memory_mb` MB (`None`: not in a
/// Lambda, the defaults of `duff run`).
///
/// Memory: below the 100 MiB threshold the engine's working set is dominated by its windows
/// (4 MiB ranges × 2 per thread, three windows in flight) and the ranged GETs in flight, here
/// 4 × 8 MiB (2 below 1 GB), plus 2 part uploads of 8 MiB per output file — a few hundred MB
/// at most, inside the 2048 MB default. Threads follow the vCPUs Lambda grants for the memory.
pub fn lambda_tuning(memory_mb: Option<u64>) -> (TransferSettings, RunOptions) {
    let Some(memory_mb) = memory_mb else {
        return (TransferSettings::default(), RunOptions::default());
    };
    let vcpus = (memory_mb as f64 / MB_PER_VCPU).max(0.1);
    let settings = TransferSettings {
        read_chunk_bytes: 8 << 20,
        read_concurrency: if memory_mb >= 1024 { 4 } else { 2 },
        part_bytes: 8 << 20,
        upload_concurrency: 2,
        ..TransferSettings::default()
    };
    let options = RunOptions {
        threads: (vcpus.ceil() as usize).clamp(1, 6),
        cost_basis: Some(CostBasis {
            vcpus,
            memory_gib: memory_mb as f64 / 1024.0,
            source: "lambda".into(),
        }),
        ..RunOptions::default()
    };
    (settings, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_follows_the_lambda_memory() {
        let (s, o) = lambda_tuning(Some(2048));
        assert_eq!(o.threads, 2);
        let cost = o.cost_basis.unwrap();
        assert!((cost.vcpus - 2048.0 / 1769.0).abs() < 1e-9);
        assert_eq!(cost.memory_gib, 2.0);
        assert_eq!(cost.source, "lambda");
        assert!(s.validate().is_ok());
        let (small, o) = lambda_tuning(Some(512));
        assert_eq!(o.threads, 1);
        assert_eq!(small.read_concurrency, 2);
        assert_eq!(lambda_tuning(Some(10240)).1.threads, 6);
        assert!(lambda_tuning(None).1.cost_basis.is_none());
    }
}
