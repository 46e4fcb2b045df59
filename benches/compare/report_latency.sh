#!/usr/bin/env bash
# Report latency in DuckDB over the API's Delta tables (see report_latency.py).
#   benches/compare/report_latency.sh <lake> [--rounds N] [--threads N]
# The lake: the latency bench's, e.g. target/bench-delta-lake-1GiB (built by
# `cargo bench -p duff-api --bench latency`). Installs duckdb, deltalake, pyarrow and pytz into
# target/bench-venv-reports (under CARGO_TARGET_DIR when set) once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${CARGO_TARGET_DIR:-$root/target}/bench-venv-reports"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet duckdb==2.0.0 deltalake==1.6.6 pyarrow==26.0.1 pytz==2025.2
fi
exec "$venv/bin/python" "$here/report_latency.py" "$@"
