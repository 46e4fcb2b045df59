//! How big a Batch job an input needs. The engine's memory is a working set of well under a GiB
//! plus its dedup tables, which hold every distinct (order_id, product_id) of the file: 24-byte
//! entries in 64 power-of-two shards, filled to at most 7/8. So the job definition's memory
//! bounds the input one job can take, and bigger inputs get a bigger job through SubmitJob's
//! container overrides.

/// vCPUs and memory of a Fargate job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSize {
    /// Whole vCPUs (Fargate takes 1, 2, 4, 8 or 16).
    pub vcpus: u32,
    /// Memory in MiB; Fargate accepts only certain sizes for each vCPU count.
    pub memory_mib: u32,
}

impl Default for JobSize {
    /// The job definition's default size (infra/templates/batch.yaml).
    fn default() -> Self {
        JobSize {
            vcpus: 2,
            memory_mib: 4096,
        }
    }
}

/// Memory besides the dedup tables: window, rows in flight, Parquet row groups, the allocator.
/// Measured: 684 MiB on a 10 GiB input (`benches/README.md`, "Current figures"), rounded up.
const WORKING_SET_MIB: u64 = 1024;
/// Fewest bytes per input row we plan for (datagen rows average 98 bytes; a smaller guess makes
/// more keys, so a bigger job).
const MIN_ROW_BYTES: u64 = 60;
/// Decompressed bytes per gzip byte we plan for (CSV compresses 4–8×).
const GZIP_RATIO: u64 = 8;
const SHARDS: u64 = 64;
const ENTRY_BYTES: u64 = 24 + 1;

/// Memory the engine needs for an input of `bytes` (compressed size when `gzip`), in MiB.
pub fn memory_needed_mib(bytes: u64, gzip: bool) -> u64 {
    let plain = if gzip {
        bytes.saturating_mul(GZIP_RATIO)
    } else {
        bytes
    };
    let keys_per_shard = plain / MIN_ROW_BYTES / SHARDS + 1;
    // hashbrown: the next power of two holding the keys at 7/8 load.
    let buckets = (keys_per_shard * 8).div_ceil(7).next_power_of_two();
    WORKING_SET_MIB + (SHARDS * buckets * ENTRY_BYTES).div_ceil(1 << 20)
}

/// Memory sizes (MiB) Fargate accepts for a vCPU count.
fn fargate_memory(vcpus: u32) -> Vec<u32> {
    let gib = |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).map(|g| g * 1024);
    match vcpus {
        1 => gib(2, 8, 1).collect(),
        2 => gib(4, 16, 1).collect(),
        4 => gib(8, 30, 1).collect(),
        8 => gib(16, 60, 4).collect(),
        16 => gib(32, 120, 8).collect(),
        _ => Vec::new(),
    }
}

/// The job size for an input: `None` when the job definition's own size is enough, else the
/// smallest valid Fargate size (never fewer vCPUs or less memory than the definition's) with
/// the memory needed, or the largest Fargate size when nothing is big enough (such an input
/// would need splitting across several jobs; the dispatcher logs it).
pub fn size_for(bytes: u64, gzip: bool, definition: JobSize) -> Option<JobSize> {
    let needed = memory_needed_mib(bytes, gzip);
    if needed <= u64::from(definition.memory_mib) {
        return None;
    }
    let largest = JobSize {
        vcpus: 16,
        memory_mib: 120 * 1024,
    };
    let fit = [1, 2, 4, 8, 16]
        .into_iter()
        .filter(|&v| v >= definition.vcpus)
        .flat_map(|v| fargate_memory(v).into_iter().map(move |m| (v, m)))
        .find(|&(_, m)| u64::from(m) >= needed && m >= definition.memory_mib)
        .map(|(vcpus, memory_mib)| JobSize { vcpus, memory_mib });
    Some(fit.unwrap_or(largest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1_000_000_000;

    #[test]
    fn the_default_job_takes_files_up_to_a_few_gigabytes() {
        let d = JobSize::default();
        assert_eq!(size_for(100 << 20, false, d), None);
        assert_eq!(size_for(GB, false, d), None);
        // A gzip input is planned at 8× its size.
        assert_eq!(
            size_for(GB, true, d),
            Some(JobSize {
                vcpus: 2,
                memory_mib: 8192
            })
        );
    }

    #[test]
    fn bigger_files_get_the_smallest_valid_fargate_size() {
        let d = JobSize::default();
        let at = |bytes, gzip| size_for(bytes, gzip, d);
        // 10 GB at 60 bytes a row: 167 M keys -> 2^22 buckets a shard: 6.4 GiB of tables.
        assert_eq!(memory_needed_mib(10 * GB, false), 1024 + 6400);
        assert_eq!(
            at(10 * GB, false),
            Some(JobSize {
                vcpus: 2,
                memory_mib: 8192
            })
        );
        // 500 M keys -> 2^24 buckets a shard: 25 GiB of tables, beyond 2 vCPU's 16 GiB.
        assert_eq!(
            at(30 * GB, false),
            Some(JobSize {
                vcpus: 4,
                memory_mib: 26 * 1024
            })
        );
        assert_eq!(at(5 * GB, true), at(40 * GB, false));
        // Beyond one job: the largest there is.
        assert_eq!(
            at(1000 * GB, false),
            Some(JobSize {
                vcpus: 16,
                memory_mib: 120 * 1024
            })
        );
    }

    #[test]
    fn never_smaller_than_the_definition() {
        let big = JobSize {
            vcpus: 4,
            memory_mib: 12 * 1024,
        };
        assert_eq!(size_for(10 * GB, false, big), None);
        assert_eq!(
            size_for(30 * GB, false, big),
            Some(JobSize {
                vcpus: 4,
                memory_mib: 26 * 1024
            })
        );
        let small = JobSize {
            vcpus: 1,
            memory_mib: 2048,
        };
        assert_eq!(
            size_for(3 * GB, false, small),
            Some(JobSize {
                vcpus: 1,
                memory_mib: 3072
            })
        );
    }
}
