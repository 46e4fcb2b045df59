//! Command-line definitions. Every option documents its default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "duff",
    version,
    about = "Duff orders engine: validate, deduplicate and enrich order CSVs into a Parquet star schema",
    long_about = "Duff orders engine: validate, deduplicate and enrich order CSV files into a \
partitioned Parquet lake with a star schema.\n\nStart with `duff quickstart`: it generates a \
sample file, processes it into ./duff-quickstart/lake and prints what happened."
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
    /// Generate a sample file, process it into a local lake, and print the summary.
    Quickstart(QuickstartArgs),
    /// Process CSV files (plain or .csv.gz) into a lake.
    Run(RunArgs),
    /// Generate a realistic order file (and its expected-counts sidecar <out>.expected.json).
    Datagen(DatagenArgs),
}

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
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Input files: CSV, or gzip-compressed CSV (.csv.gz).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Root directory of the lake (created if missing).
    #[arg(long, env = "DUFF_LAKE")]
    pub lake: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print each run's manifest as JSON on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Do not show a progress bar (it is only shown on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
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
    /// Partition date (YYYY-MM-DD). Default: the file's modification date, UTC.
    #[arg(long)]
    pub pa_date: Option<chrono::NaiveDate>,
    /// Ingestion timestamp stamped on every row (RFC 3339). Default: the run's start time.
    /// Fixing it makes reprocessing (--force) byte-identical.
    #[arg(long)]
    pub ingested_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Accepted point-of-sale channels, comma-separated (matched case-insensitively).
    #[arg(long, value_delimiter = ',', default_value = "Retail,Online,B2B")]
    pub channels: Vec<String>,
    /// Parquet compression codec.
    #[arg(long, default_value = "snappy", value_parser = ["snappy", "zstd"])]
    pub codec: String,
    /// Start a new Parquet part file once a part reaches this many MiB.
    #[arg(long, default_value_t = 512)]
    pub file_mib: u64,
    /// Close a Parquet row group once it reaches this many MiB (a row group is buffered in
    /// memory until it is closed).
    #[arg(long, default_value_t = 64)]
    pub row_group_mib: usize,
    /// Fail the whole file when more than this fraction of its rows is quarantined.
    #[arg(long, default_value_t = 0.1)]
    pub max_bad_fraction: f64,
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
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtLevel {
    None,
    Typical,
    EveryKind,
}
