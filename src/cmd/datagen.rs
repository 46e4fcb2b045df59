//! `duff datagen`: realistic order files of any size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use duff_datagen::{Dirt, GenConfig, Size, sidecar_path};

use crate::cli::{DatagenArgs, DirtLevel};

/// Parses sizes like `1GiB`, `500MB`, `64k`, `1000`.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid size {text:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => anyhow::bail!(
            "unknown size unit {other:?} in {text:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
        ),
    };
    Ok((n * mult) as u64)
}

pub fn config(args: &DatagenArgs) -> anyhow::Result<GenConfig> {
    let size = match (&args.size, args.rows) {
        (Some(s), _) => Size::Bytes(parse_size(s)?),
        (None, Some(r)) => Size::Rows(r),
        (None, None) => Size::Rows(100_000),
    };
    let dirt = match args.dirt {
        DirtLevel::None => Dirt::none(),
        DirtLevel::Typical => Dirt::typical(),
        DirtLevel::EveryKind => Dirt::every_kind(0.01),
    };
    Ok(GenConfig {
        seed: args.seed,
        size,
        clients: args.clients,
        products: args.products,
        dirt,
        crlf: args.crlf,
        bom: args.bom,
        shuffle_columns: args.shuffle_columns,
        extra_columns: args.extra_columns,
        ..GenConfig::default()
    })
}

pub fn datagen(args: DatagenArgs) -> anyhow::Result<()> {
    if let Some(earlier) = &args.redeliver_from {
        return redelivery(earlier, &args);
    }
    let cfg = config(&args)?;
    let started = Instant::now();
    let expected = write_file(&cfg, &args.out)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} ({} rows, {:.1} MB) in {:.2}s, {:.0} MB/s; expected counts in {}",
        args.out.display(),
        expected.rows,
        expected.bytes as f64 / 1e6,
        secs,
        expected.bytes as f64 / 1e6 / secs.max(1e-9),
        sidecar_path(&args.out).display()
    );
    Ok(())
}

/// `duff datagen --redeliver-from`: a re-delivery of an earlier (plain CSV) file.
fn redelivery(earlier: &Path, args: &DatagenArgs) -> anyhow::Result<()> {
    let input = File::open(earlier).with_context(|| format!("opening {}", earlier.display()))?;
    let out =
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let done = duff_datagen::redeliver(
        std::io::BufReader::new(input),
        BufWriter::new(out),
        args.redeliver_fraction,
        args.seed,
    )?;
    eprintln!(
        "wrote {}: {} orders of {} again ({} lines), each with its next status",
        args.out.display(),
        done.orders,
        earlier.display(),
        done.lines
    );
    Ok(())
}

/// Writes the file (gzip when its name ends in .gz) and its sidecar.
pub fn write_file(cfg: &GenConfig, out: &Path) -> anyhow::Result<duff_datagen::Expected> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let gzip = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let expected = if gzip {
        let mut enc =
            flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        let e = duff_datagen::generate(cfg, &mut enc)?;
        enc.finish()?.flush()?;
        e
    } else {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let e = duff_datagen::generate(cfg, &mut w)?;
        w.flush()?;
        e
    };
    std::fs::write(sidecar_path(out), serde_json::to_string_pretty(&expected)?)
        .with_context(|| format!("writing the sidecar of {}", out.display()))?;
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("1.5 KiB").unwrap(), 1536);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("lots").is_err());
    }
}
