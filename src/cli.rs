//! Command-line definitions. Every option documents its default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "duff",
    version,
    about = "Duff orders engine: validate, deduplicate and enrich order CSVs into a Parquet star schema",
    long_about = "Duff orders engine: validate, deduplicate and enrich order CSV files into a \
partitioned lake of Delta tables with a star schema."
)]
// The local build only: the Batch job's build has no quickstart.
#[cfg_attr(
    feature = "serve",
    command(
        after_long_help = "Start with `duff quickstart`: it generates a sample file, \
processes it into ./duff-quickstart/lake, prints what happened and serves the dashboard."
    )
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "DUFF_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// More logs: -v info, -vv debug (default: warnings only; RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a sample file, process it into a local lake, print the summary, then serve the
    /// dashboard (--no-serve: stop after the summary).
    #[cfg(feature = "serve")]
    Quickstart(QuickstartArgs),
    /// Process CSV files (plain or .csv.gz) into a lake.
    Run(RunArgs),
    /// Generate a realistic order file (and its expected-counts sidecar <out>.expected.json).
    Datagen(DatagenArgs),
    /// Serve the reporting API and the dashboard over a local lake.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// The AWS Batch job: process one S3 object into the lake. Exit codes: 0 processed or
    /// already done, 2 input rejected (a failed manifest was written), 3 permanent error
    /// (missing object, access denied, object replaced, bad arguments), 75 retryable error.
    Job(JobArgs),
    /// Handle one dispatcher event (an S3, EventBridge, SQS or backfill JSON file, as the
    /// Lambda receives it) with the Lambda's handler, against S3 (AWS_ENDPOINT_URL_S3 for a
    /// local server); prints what was done with each object as JSON. Exit codes: 0 done,
    /// 2 an object failed for good (e.g. input rejected), 75 a retryable failure (run again).
    #[cfg(feature = "dispatch")]
    Dispatch(DispatchArgs),
    /// List a bucket prefix (every page) and dispatch each input that is not processed yet:
    /// the Lambda's nightly backfill, run here. Exit codes as for `dispatch`.
    #[cfg(feature = "dispatch")]
    Backfill(BackfillArgs),
    /// Maintain a local lake of Delta tables: verify its invariants, remove unreferenced files.
    Lake(LakeArgs),
}

#[derive(Args, Debug)]
pub struct LakeArgs {
    #[command(subcommand)]
    pub command: LakeCommand,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Subcommand, Debug)]
pub enum LakeCommand {
    /// Verify every invariant (committed files exist; every recorded run is in every table,
    /// once, with the row counts of its record; failed runs hold no rows; order_lines is the
    /// latest version of every line; every mart is the aggregate of order_lines; the current
    /// dimensions are the latest versions of the folded runs' dimensions) and print
    /// what is wrong. Exit codes: 0 healthy, 2 problems found, 1 the lake could not be read.
    Check(LakeCheckArgs),
    /// Convert, in place, a local lake written before its tables were Delta tables (run
    /// manifests in _runs/): every recorded run's files are committed as they are, then folded.
    Convert(LakeDirArgs),
    /// Fold every committed run the current state (order_lines and the marts) does not hold
    /// yet. `duff run` folds after each run; in S3, a run whose fold found another one running
    /// leaves its run to it, and this command (the scheduled fold job) completes any fold.
    Fold(LakeDirArgs),
    /// Compact and cluster the current state's files: per partition of order_lines, the files
    /// smaller than --target-mib (small inputs', or those a re-delivery rewrote) are packed
    /// together, and every file not yet clustered is rewritten with row groups that each hold
    /// a range of clients (a client's lookup reads one row group per file); the record of folds
    /// becomes one file. Safe while runs commit (it waits for a running fold). The history
    /// tables keep one set of files per run.
    Optimize(LakeOptimizeArgs),
    /// Remove the data files no commit references (a crashed or losing attempt's, a replaced
    /// run's) and abandoned staging directories, older than the retention; then checkpoint each
    /// table's log and remove its entries older than the log retention (30 days). The only
    /// command that deletes in the lake. Safe while runs commit.
    Vacuum(LakeVacuumArgs),
}

#[derive(Args, Debug)]
pub struct LakeDirArgs {
    /// The lake: a local directory or an S3 prefix (s3://bucket/prefix).
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: String,
}

#[derive(Args, Debug)]
pub struct LakeCheckArgs {
    /// The lake: a local directory or an S3 prefix (s3://bucket/prefix).
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: String,
    /// Versions of order lines compared at once when checking the current state (about 40
    /// bytes of memory each): the check reads the lake one window of order ids at a time.
    #[arg(long, default_value_t = duff_delta::maintenance::CHECK_WINDOW_ROWS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub window_rows: u64,
}

#[derive(Args, Debug)]
pub struct LakeOptimizeArgs {
    /// The lake: a local directory or an S3 prefix (s3://bucket/prefix).
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: String,
    /// Size of a compacted file, in MiB (at least 1): files smaller than this are compacted
    /// together.
    #[arg(long, default_value_t = duff_delta::optimize::DEFAULT_TARGET_BYTES >> 20)]
    pub target_mib: u64,
    /// Rows per row group of a clustered file (each holds a range of clients, so a client's
    /// lookup reads one per file).
    #[arg(long, default_value_t = duff_delta::optimize::DEFAULT_ROW_GROUP_ROWS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub row_group_rows: usize,
}

#[derive(Args, Debug)]
pub struct LakeVacuumArgs {
    /// The lake: a local directory or an S3 prefix (s3://bucket/prefix).
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: String,
    /// Keep unreferenced files younger than this many hours (at least 1: a run still writing
    /// must keep its files).
    #[arg(long, default_value_t = 168)]
    pub retention_hours: u64,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(feature = "serve")]
#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Working directory: the sample goes to <dir>/inbox, the lake to <dir>/lake.
    #[arg(long, default_value = "duff-quickstart")]
    pub dir: PathBuf,
    /// Rows in the sample file.
    #[arg(long, default_value_t = 200_000)]
    pub rows: u64,
    /// Seed of the sample file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Stop after the summary instead of serving the dashboard (default: serve until Ctrl-C).
    #[arg(long)]
    pub no_serve: bool,
    /// Address to serve the dashboard and API on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
}

#[cfg(feature = "serve")]
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The lake to serve: a local directory, or an s3://bucket/prefix URL read directly (the
    /// API Lambda's `lake` backend; AWS_ENDPOINT_URL_S3 points it at any S3-protocol server).
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: String,
    /// Address to listen on (port 0 picks a free port; the URL is printed). On a loopback
    /// address only requests for localhost are answered (DNS rebinding); elsewhere without a
    /// key, a warning says that anyone who can reach it reads every report.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Require the key in this file (its first line) in the x-api-key header on data routes.
    /// The environment variable DUFF_API_KEY gives it too; neither is on the command line, so
    /// the key is not in the process list (default: no key).
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// Query threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Inputs: local paths or s3://bucket/key URLs; CSV, or gzip-compressed CSV (.csv.gz).
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// The lake: a local directory (created if missing) or an s3://bucket/prefix URL.
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: String,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub s3: S3Args,
    /// Print each run's manifest as JSON on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Do not show a progress bar (it is only shown on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug, Clone)]
pub struct JobArgs {
    /// Bucket of the input object.
    #[arg(long, env = "DUFF_SOURCE_BUCKET")]
    pub bucket: String,
    /// Key of the input object (as stored, not URL-encoded).
    #[arg(long, env = "DUFF_SOURCE_KEY")]
    pub key: String,
    /// ETag of the version to process (quoted or bare). Empty: the current version. A different
    /// current version fails the job (exit 3): the upload that named this one is superseded.
    #[arg(long, env = "DUFF_SOURCE_ETAG", default_value = "")]
    pub etag: String,
    /// The lake: s3://bucket/prefix (or a local directory).
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: String,
    /// vCPUs the job was given, for the cost estimate. Default: read from the container's
    /// cgroup (Fargate), else the number of cores.
    #[arg(long, env = "DUFF_JOB_VCPUS")]
    pub vcpus: Option<f64>,
    /// Memory the job was given in MiB, for the cost estimate. Default: the cgroup limit, else
    /// the machine's memory.
    #[arg(long, env = "DUFF_JOB_MEMORY_MIB")]
    pub memory_mib: Option<f64>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub s3: S3Args,
}

#[cfg(feature = "dispatch")]
#[derive(Args, Debug)]
pub struct DispatchArgs {
    /// The event: a JSON file as the Lambda would receive it ("-": standard input).
    #[arg(long)]
    pub event: PathBuf,
    #[command(flatten)]
    pub dispatcher: DispatcherArgs,
}

#[cfg(feature = "dispatch")]
#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// Bucket to list.
    #[arg(long)]
    pub bucket: String,
    /// Key prefix to list (default: --inbox-prefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only objects last modified on or after this UTC date, YYYY-MM-DD (default: no bound).
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Only objects last modified on or before this UTC date, YYYY-MM-DD (default: no bound).
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Keys per listing page (default: 1000, the S3 maximum).
    #[arg(long)]
    pub page_size: Option<i32>,
    /// Only objects last modified in the last N days, UTC (with --from, the later bound holds;
    /// default: no bound).
    #[arg(long)]
    pub lookback_days: Option<u32>,
    /// Keys under the prefix start with their upload date (YYYY-MM-DD...): list from the
    /// window's first date (a day early) instead of the whole prefix (default: off).
    #[arg(long)]
    pub dated_keys: bool,
    #[command(flatten)]
    pub dispatcher: DispatcherArgs,
}

/// The dispatcher's configuration (the Lambda reads the same environment variables).
#[cfg(feature = "dispatch")]
#[derive(Args, Debug)]
pub struct DispatcherArgs {
    /// The lake: s3://bucket/prefix or a local directory.
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: String,
    /// Only keys under this prefix are inputs (empty: the whole bucket).
    #[arg(long, env = "DUFF_INBOX_PREFIX", default_value = "inbox/")]
    pub inbox_prefix: String,
    /// Inputs of at least this many bytes go to AWS Batch; smaller ones run here.
    #[arg(long, env = "DUFF_SIZE_THRESHOLD_BYTES", default_value_t = 104_857_600)]
    pub threshold_bytes: u64,
    /// AWS Batch job queue for big inputs (default: none, and big inputs run here too, with a
    /// note in the output). AWS_ENDPOINT_URL_BATCH points the client elsewhere.
    #[arg(long, env = "DUFF_BATCH_JOB_QUEUE", requires = "batch_job_definition")]
    pub batch_queue: Option<String>,
    /// AWS Batch job definition (name, name:revision or ARN; default: none, required with
    /// --batch-queue).
    #[arg(long, env = "DUFF_BATCH_JOB_DEFINITION", requires = "batch_queue")]
    pub batch_job_definition: Option<String>,
    /// Only say what would be done: nothing is processed, submitted or written.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

/// How S3 objects are read and written.
#[derive(Args, Debug, Clone)]
pub struct S3Args {
    /// Size of each ranged GET, in MiB.
    #[arg(long, default_value_t = 8, env = "DUFF_S3_READ_CHUNK_MIB")]
    pub s3_read_chunk_mib: usize,
    /// Ranged GETs in flight (read memory ≈ (this + 2) × chunk size).
    #[arg(long, default_value_t = 8, env = "DUFF_S3_READ_CONCURRENCY")]
    pub s3_read_concurrency: usize,
    /// Multipart upload part size, in MiB (at least 5).
    #[arg(long, default_value_t = 8, env = "DUFF_S3_PART_MIB")]
    pub s3_part_mib: usize,
    /// Part uploads in flight per output file.
    #[arg(long, default_value_t = 4, env = "DUFF_S3_UPLOAD_CONCURRENCY")]
    pub s3_upload_concurrency: usize,
    /// Attempts per S3 request (throttling, 5xx and resets are retried with backoff and jitter).
    #[arg(long, default_value_t = 6, env = "DUFF_S3_MAX_ATTEMPTS")]
    pub s3_max_attempts: u32,
    /// How long, in seconds, the fold's lease on a lake in S3 holds unless renewed: the
    /// longest a fold waits for one whose process died. A fold renews it at every step.
    #[arg(long, default_value_t = 600, env = "DUFF_FOLD_LEASE_SECS")]
    pub fold_lease_secs: u64,
}

/// Options of the engine itself.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0, env = "DUFF_THREADS")]
    pub threads: usize,
    /// Size of the byte ranges parsed in parallel, in KiB.
    #[arg(long, default_value_t = 4096)]
    pub chunk_kib: usize,
    /// Longest accepted record in bytes. A longer multi-line record is quarantined line by line;
    /// a single longer line fails the file.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_record_bytes: usize,
    /// Partition date (YYYY-MM-DD). Default (or empty): the input's upload date (S3
    /// LastModified) or modification date (local file), UTC.
    #[arg(long, env = "DUFF_PA_DATE", value_parser = parse_optional_date)]
    pub pa_date: Option<OptionalDate>,
    /// Ingestion timestamp stamped on every row (RFC 3339). Default: the input's upload
    /// (LastModified) or modification time, so every attempt of a run writes the same bytes.
    #[arg(long)]
    pub ingested_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Accepted point-of-sale channels, comma-separated (matched case-insensitively).
    #[arg(long, value_delimiter = ',', default_value = "Retail,Online,B2B")]
    pub channels: Vec<String>,
    /// Parquet compression codec.
    #[arg(long, default_value = "snappy", value_parser = ["snappy", "zstd"])]
    pub codec: String,
    /// What encodes orders and fact_orders: `engine`, the engine's own encoder (a few times
    /// faster), or `arrow`, the parquet crate's ArrowWriter as for every other table (the way
    /// around the engine's encoder should a parquet upgrade break it).
    #[arg(long, default_value = "engine", value_parser = ["engine", "arrow"], env = "DUFF_PARQUET_ENCODER")]
    pub parquet_encoder: String,
    /// Start a new Parquet part file once a part reaches this many MiB.
    #[arg(long, default_value_t = 512)]
    pub file_mib: u64,
    /// Close a Parquet row group once it holds this many rows (orders and fact_orders: rounded
    /// up to a multiple of 8192).
    #[arg(long, default_value_t = 1 << 20)]
    pub row_group_rows: usize,
    /// ...or once it holds this many MiB: of data before encoding for orders and fact_orders,
    /// encoded for the quarantine. A row group is buffered in memory until it is closed.
    #[arg(long, default_value_t = 256)]
    pub row_group_mib: usize,
    /// Fail the whole file when more than this fraction of its rows is quarantined (once
    /// --min-bad-rows are): a systematically broken file, not a few bad rows.
    #[arg(long, default_value_t = 0.1)]
    pub max_bad_fraction: f64,
    /// Quarantined rows below which --max-bad-fraction never fails a file: a small file's
    /// good rows land and its bad ones are quarantined.
    #[arg(long, default_value_t = 100)]
    pub min_bad_rows: u64,
    /// Fail a gzip input (gzip_expansion) once it decompresses to more than this many times
    /// its compressed size (and past 64 MiB): a gzip bomb. Exports compress 5-15x.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_gzip_ratio: u64,
    /// Reprocess inputs whose run is already committed (default: skip them).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct DatagenArgs {
    /// Output file; a name ending in .gz is gzip-compressed.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Number of data rows (default 100000 when --size is not given).
    #[arg(long, conflicts_with = "size")]
    pub rows: Option<u64>,
    /// Approximate size instead of a row count, e.g. 500MB, 1GiB.
    #[arg(long)]
    pub size: Option<String>,
    /// Random seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Dirt to mix in: none; typical (~2% duplicates, ~0.3% key conflicts, a little of each bad
    /// row); every-kind (1% of every bad kind, and an unterminated quote at the end).
    #[arg(long, value_enum, default_value_t = DirtLevel::Typical)]
    pub dirt: DirtLevel,
    /// Distinct clients.
    #[arg(long, default_value_t = 10_000)]
    pub clients: u32,
    /// Distinct products.
    #[arg(long, default_value_t = 500)]
    pub products: u32,
    /// CRLF line ends instead of LF.
    #[arg(long)]
    pub crlf: bool,
    /// Start with a UTF-8 byte-order mark.
    #[arg(long)]
    pub bom: bool,
    /// Shuffle the column order (the header follows).
    #[arg(long)]
    pub shuffle_columns: bool,
    /// Add two columns that are not part of the contract.
    #[arg(long)]
    pub extra_columns: bool,
    /// Instead of a new file, write a re-delivery of this earlier file: a share of its orders
    /// (whole orders, picked by --seed), each line with the next status of created →
    /// delivered → broken. Lines that are not valid orders are left out. Default: none (a new
    /// file is generated).
    #[arg(long, value_name = "EARLIER_CSV")]
    pub redeliver_from: Option<PathBuf>,
    /// The share of the earlier file's orders a re-delivery sends again.
    #[arg(long, default_value_t = 0.2, requires = "redeliver_from")]
    pub redeliver_fraction: f64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtLevel {
    None,
    Typical,
    EveryKind,
}

/// A date, or nothing for an empty value (AWS Batch substitutes an empty default parameter).
#[derive(Debug, Clone, Copy)]
pub struct OptionalDate(pub Option<chrono::NaiveDate>);

fn parse_optional_date(s: &str) -> Result<OptionalDate, String> {
    if s.trim().is_empty() {
        return Ok(OptionalDate(None));
    }
    s.trim()
        .parse()
        .map(|d| OptionalDate(Some(d)))
        .map_err(|e| format!("{s:?} is not a date (YYYY-MM-DD): {e}"))
}
