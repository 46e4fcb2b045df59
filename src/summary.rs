//! The human summary printed after runs.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use duff_engine::{Manifest, RunOutcome};

fn outcome_word(o: &RunOutcome) -> &'static str {
    match o {
        RunOutcome::Succeeded(_) => "published",
        RunOutcome::Failed(_) => "FAILED",
        RunOutcome::Skipped(_) => "skipped (already done)",
    }
}

fn file_name(m: &Manifest) -> String {
    m.source
        .uri
        .rsplit('/')
        .next()
        .unwrap_or(&m.source.uri)
        .to_string()
}

/// Prints the table of runs; `lake` is the lake's location as the user gave it.
pub fn print(outcomes: &[RunOutcome], lake: &str) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "input",
        "run id",
        "outcome",
        "rows read",
        "written",
        "duplicates",
        "quarantined",
        "seconds",
        "MB/s",
    ]);
    for o in outcomes {
        let m = o.manifest();
        let c = &m.counts;
        table.add_row(vec![
            file_name(m),
            m.run_id.clone(),
            outcome_word(o).to_string(),
            c.rows_read.to_string(),
            c.rows_written.to_string(),
            c.exact_duplicates.to_string(),
            c.quarantined.to_string(),
            format!("{:.2}", m.timings.total_ms / 1e3),
            format!("{:.0}", m.throughput.input_mb_per_s),
        ]);
    }
    println!("{table}");
    for o in outcomes {
        let m = o.manifest();
        if let Some(err) = &m.error {
            println!(
                "{}: {} ({})",
                file_name(m),
                err,
                m.error_code.as_deref().unwrap_or("?")
            );
        }
        if !m.counts.quarantined_by_reason.is_empty() && !matches!(o, RunOutcome::Skipped(_)) {
            let reasons: Vec<String> = m
                .counts
                .quarantined_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            println!(
                "{}: quarantined by reason: {}",
                file_name(m),
                reasons.join(", ")
            );
        }
        if matches!(o, RunOutcome::Succeeded(_)) && !m.nothing_lost {
            println!("{}: WARNING: row accounting does not balance", file_name(m));
        }
    }
    let lake = lake.trim_end_matches('/');
    if lake.starts_with("s3://") {
        println!("manifests: {lake}/_runs/");
    } else {
        println!("run records: {lake}/runs/ (a Delta table, like every table of the lake)");
    }
}
