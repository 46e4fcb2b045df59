//! The one error type of `duff-datagen`.

/// Why [`generate`](crate::generate), [`generate_to_path`](crate::generate_to_path) or [`redeliver`](crate::redeliver()) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be met: a [`GenConfig`](crate::GenConfig) that [`GenConfig::validate`](crate::GenConfig::validate) rejects (an
    /// empty catalog, a rate outside `0..=1`, rates adding up to more than 1, a per-row rate
    /// for a reason not in [`Reason::ROW_KINDS`](crate::Reason::ROW_KINDS); [`generate`](crate::generate) checks before writing anything),
    /// or a [`redeliver`](crate::redeliver()) fraction outside `0..=1` or earlier file it cannot read.
    #[error("invalid generator config: {0}")]
    InvalidConfig(String),
    /// Writing the output (or the sidecar) failed; what was written so far is incomplete.
    #[error("writing generated data: {0}")]
    Io(#[from] std::io::Error),
}
