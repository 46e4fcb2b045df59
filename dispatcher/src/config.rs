//! What the dispatcher is told: where the lake is, which keys are inputs, where big inputs go.

use duff_s3::Location;

use crate::error::DispatchError;
use crate::sizing::JobSize;

/// Default size threshold: 100 MiB. Inputs below it run in the Lambda.
pub const DEFAULT_THRESHOLD_BYTES: u64 = 100 << 20;
/// Default inbox prefix: only keys under `inbox/` are inputs.
pub const DEFAULT_INBOX_PREFIX: &str = "inbox/";

/// Everything the dispatcher decides by: the lake, which keys are inputs, the size above which
/// they go to Batch, and the Batch target.
#[derive(Debug, Clone)]
pub struct Config {
    /// The lake: `s3://bucket/prefix` (or a local directory, for `duff dispatch`).
    pub lake: Location,
    /// Only keys under this prefix are inputs (empty: the whole bucket).
    pub inbox_prefix: String,
    /// Inputs of at least this many bytes go to Batch.
    pub threshold_bytes: u64,
    /// Where big inputs go; `None` (local use only) runs them in-process.
    pub batch: Option<BatchTarget>,
    /// Plan only: nothing is processed, submitted or written.
    pub dry_run: bool,
}

/// The Batch job queue and job definition (name, name:revision or ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTarget {
    /// The job queue jobs are submitted to.
    pub queue: String,
    /// The job definition they run (its command is `duff job`).
    pub definition: String,
    /// The job definition's own size; inputs needing more memory get an override.
    pub job_size: JobSize,
}

impl Config {
    /// The Lambda's configuration: `DUFF_LAKE` (required), `DUFF_INBOX_PREFIX` (default
    /// `inbox/`), `DUFF_SIZE_THRESHOLD_BYTES` (default 104857600), `DUFF_BATCH_JOB_QUEUE` and
    /// `DUFF_BATCH_JOB_DEFINITION` (both required: a Lambda cannot hold big inputs),
    /// `DUFF_BATCH_JOB_VCPUS` and `DUFF_BATCH_JOB_MEMORY_MIB` (the definition's size; default 2
    /// and 4096).
    pub fn from_env() -> Result<Config, DispatchError> {
        Config::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, DispatchError> {
        let required = |name: &str| {
            get(name).ok_or_else(|| DispatchError::Config(format!("{name} is not set")))
        };
        let lake = Location::parse(&required("DUFF_LAKE")?)?;
        let threshold_bytes = match get("DUFF_SIZE_THRESHOLD_BYTES") {
            None => DEFAULT_THRESHOLD_BYTES,
            Some(v) => v.trim().parse().map_err(|_| {
                DispatchError::Config(format!(
                    "DUFF_SIZE_THRESHOLD_BYTES={v:?} is not a byte count"
                ))
            })?,
        };
        let number = |name: &str, default: u32| match get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| DispatchError::Config(format!("{name}={v:?} is not a whole number"))),
        };
        let job_size = JobSize {
            vcpus: number("DUFF_BATCH_JOB_VCPUS", JobSize::default().vcpus)?,
            memory_mib: number("DUFF_BATCH_JOB_MEMORY_MIB", JobSize::default().memory_mib)?,
        };
        let config = Config {
            lake,
            inbox_prefix: get("DUFF_INBOX_PREFIX").unwrap_or_else(|| DEFAULT_INBOX_PREFIX.into()),
            threshold_bytes,
            batch: Some(BatchTarget {
                queue: required("DUFF_BATCH_JOB_QUEUE")?,
                definition: required("DUFF_BATCH_JOB_DEFINITION")?,
                job_size,
            }),
            dry_run: false,
        };
        config.validate()?;
        Ok(config)
    }

    /// Rejects a Batch target with an empty queue or job definition.
    pub fn validate(&self) -> Result<(), DispatchError> {
        if let Some(b) = &self.batch
            && (b.queue.is_empty() || b.definition.is_empty())
        {
            return Err(DispatchError::Config(
                "the Batch job queue and job definition must both be set".into(),
            ));
        }
        Ok(())
    }

    /// Whether `bucket`/`key` is inside the lake: the dispatcher never reacts to its own
    /// outputs, even if a notification is (mis)configured on the lake bucket.
    pub fn in_lake(&self, bucket: &str, key: &str) -> bool {
        match &self.lake {
            Location::S3(root) => bucket == root.bucket && key.starts_with(&root.key),
            Location::Local(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_the_lambda_environment_with_defaults() {
        let c = Config::from_lookup(lookup(&[
            ("DUFF_LAKE", "s3://lake-bucket/data/"),
            ("DUFF_BATCH_JOB_QUEUE", "q"),
            ("DUFF_BATCH_JOB_DEFINITION", "d"),
        ]))
        .unwrap();
        assert_eq!(c.inbox_prefix, "inbox/");
        assert_eq!(c.threshold_bytes, 104_857_600);
        assert_eq!(
            c.batch,
            Some(BatchTarget {
                queue: "q".into(),
                definition: "d".into(),
                job_size: JobSize::default(),
            })
        );
        let sized = Config::from_lookup(lookup(&[
            ("DUFF_LAKE", "s3://l/"),
            ("DUFF_BATCH_JOB_QUEUE", "q"),
            ("DUFF_BATCH_JOB_DEFINITION", "d"),
            ("DUFF_BATCH_JOB_VCPUS", "4"),
            ("DUFF_BATCH_JOB_MEMORY_MIB", "8192"),
        ]))
        .unwrap();
        assert_eq!(
            sized.batch.unwrap().job_size,
            JobSize {
                vcpus: 4,
                memory_mib: 8192
            }
        );
        assert!(c.in_lake("lake-bucket", "data/_runs/x.json"));
        assert!(!c.in_lake("lake-bucket", "inbox/x.csv"));
        assert!(!c.in_lake("inbox-bucket", "data/x.csv"));
    }

    #[test]
    fn refuses_an_incomplete_environment() {
        assert!(Config::from_lookup(lookup(&[])).is_err());
        let no_queue = lookup(&[("DUFF_LAKE", "s3://l/"), ("DUFF_BATCH_JOB_DEFINITION", "d")]);
        assert!(Config::from_lookup(no_queue).is_err());
        let bad_size = lookup(&[
            ("DUFF_LAKE", "s3://l/"),
            ("DUFF_BATCH_JOB_QUEUE", "q"),
            ("DUFF_BATCH_JOB_DEFINITION", "d"),
            ("DUFF_SIZE_THRESHOLD_BYTES", "100MB"),
        ]);
        assert!(Config::from_lookup(bad_size).is_err());
        let bad_memory = lookup(&[
            ("DUFF_LAKE", "s3://l/"),
            ("DUFF_BATCH_JOB_QUEUE", "q"),
            ("DUFF_BATCH_JOB_DEFINITION", "d"),
            ("DUFF_BATCH_JOB_MEMORY_MIB", "4GiB"),
        ]);
        assert!(Config::from_lookup(bad_memory).is_err());
    }
}
