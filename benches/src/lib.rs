//! Benchmarks (issue 3).
