//! How well this machine itself scales from one core to several, for the kinds of work the
//! engine does: each kernel runs on one thread alone, then on `--threads` threads at once
//! (each with its own buffers), and the ratio of their times is the speedup the machine
//! allows that kernel. A job that streams its input through memory cannot scale better than
//! the `read` and `copy` kernels do here, whatever its code.
//!
//! ```text
//! cargo run --release -p duff-benches --example scaling_ceiling -- [--threads N] [--rounds R] [--mib M]
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

const HELP: &str = "\
scaling_ceiling: the speedup this machine allows from 1 thread to N, per kind of work

Options:
  --threads N  threads run at once in the second half of each round
               (default: the available cores)
  --rounds R   alternating rounds; medians are reported (default: 5)
  --mib M      size of each thread's buffers for the memory kernels, in MiB; well past the
               caches (default: 256)
  -h, --help   this text";

/// One kind of work: runs once over its thread's buffers.
struct Kernel {
    name: &'static str,
    what: &'static str,
    run: fn(&mut Buffers),
}

/// A thread's buffers: a large source and destination, and a small one that stays in L1.
struct Buffers {
    source: Vec<u8>,
    destination: Vec<u8>,
    small: Vec<u8>,
}

impl Buffers {
    fn new(bytes: usize) -> Self {
        // Written, not only allocated: every page is mapped before any timing.
        let source: Vec<u8> = (0..bytes).map(|i| (i * 131 + 7) as u8).collect();
        Buffers {
            destination: vec![1; bytes],
            source,
            small: (0..16 * 1024).map(|i| (i * 31 + 3) as u8).collect(),
        }
    }
}

/// Passes of the memory kernels per timing: long enough to time, short enough to alternate.
const PASSES: usize = 8;

const KERNELS: [Kernel; 3] = [
    Kernel {
        name: "read",
        what: "sum the source's bytes 8 at a time, 8 times (a parser's input scan)",
        run: |b| {
            for _ in 0..PASSES {
                let sum = black_box(&b.source)
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .fold(0u64, u64::wrapping_add);
                black_box(sum);
            }
        },
    },
    Kernel {
        name: "copy",
        what: "copy the source to the destination, 8 times (memmove: columns, pages)",
        run: |b| {
            for _ in 0..PASSES {
                b.destination.copy_from_slice(black_box(&b.source));
                black_box(&mut b.destination);
            }
        },
    },
    Kernel {
        name: "compute",
        what: "8 independent multiply-add chains over 16 KiB in L1 (no memory traffic)",
        run: |b| {
            let mut acc = [1u64; 8];
            for _ in 0..40_000 {
                for chunk in b.small.chunks_exact(8) {
                    for (a, &byte) in acc.iter_mut().zip(chunk) {
                        *a = a
                            .wrapping_mul(0x100_0000_01b3)
                            .wrapping_add(u64::from(byte));
                    }
                }
            }
            black_box(acc);
        },
    },
];

/// Times `kernel` on `threads` threads at once, each over its own buffers; the slowest
/// thread's time.
fn timed(kernel: &Kernel, buffers: &mut [Buffers]) -> Duration {
    std::thread::scope(|scope| {
        let start = Instant::now();
        let threads: Vec<_> = buffers
            .iter_mut()
            .map(|b| {
                scope.spawn(move || {
                    (kernel.run)(b);
                    start.elapsed()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a kernel does not panic"))
            .max()
            .unwrap_or_default()
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn main() {
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (mut rounds, mut mib) = (5usize, 256usize);
    let mut args = std::env::args().skip(1);
    let usage = |problem: String| -> ! {
        eprintln!("error: {problem}\n\n{HELP}");
        std::process::exit(2)
    };
    while let Some(arg) = args.next() {
        let mut value = || match args.next().map(|v| v.parse::<usize>()) {
            Some(Ok(v)) if v > 0 => v,
            _ => usage(format!("{arg} needs a positive number")),
        };
        match arg.as_str() {
            "--threads" => threads = value(),
            "--rounds" => rounds = value(),
            "--mib" => mib = value(),
            "-h" | "--help" => {
                println!("{HELP}");
                return;
            }
            other => usage(format!("unknown option {other}")),
        }
    }
    let mut buffers: Vec<Buffers> = (0..threads).map(|_| Buffers::new(mib << 20)).collect();
    println!(
        "{threads} threads, {rounds} rounds, {mib} MiB per thread; medians of the slowest thread"
    );
    println!("| kernel | 1 thread | {threads} at once | speedup allowed | work |");
    println!("|---|---:|---:|---:|---|");
    for kernel in &KERNELS {
        let (mut alone, mut together) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            alone.push(timed(kernel, &mut buffers[..1]));
            together.push(timed(kernel, &mut buffers));
        }
        let (alone, together) = (median(alone), median(together));
        println!(
            "| {} | {:.3} s | {:.3} s | {:.2}× | {} |",
            kernel.name,
            alone.as_secs_f64(),
            together.as_secs_f64(),
            threads as f64 * alone.as_secs_f64() / together.as_secs_f64(),
            kernel.what,
        );
    }
}
