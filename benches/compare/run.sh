#!/usr/bin/env bash
# Compares the engine with DuckDB, Polars and PySpark (local mode) on one datagen file.
#
#   benches/compare/run.sh [--size 1GiB] [--runs 3] [--peers duckdb,polars,pyspark] [--threads 2]
#                          [--timeout 900] [--diff] [--no-scaling]
#
# DUFF_BIN=/path/to/duff skips the cargo build. See benches/compare/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/benches/compare"
SIZE=1GiB
RUNS=3
PEERS=duckdb,polars,pyspark
THREADS=2
EXTRA=()

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --size) SIZE="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --peers) PEERS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --timeout) EXTRA+=(--timeout "$2"); shift 2 ;;
        --diff) EXTRA+=(--diff); shift ;;
        --no-scaling) EXTRA+=(--no-scaling); shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage 2 ;;
    esac
done

# 1. The peers, pinned, in a venv of their own.
VENV="$ROOT/target/bench-venv"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV"
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.compare-requirements"
if ! cmp -s "$HERE/requirements.txt" "$STAMP"; then
    echo "installing $(grep -v '^#' "$HERE/requirements.txt" | tr '\n' ' ')"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$STAMP"
fi
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
print("versions: " + ", ".join(f"{p} {md.version(p)}" for p in ("duckdb", "polars", "pyspark", "pyarrow", "psutil")))
EOF
if [[ ",$PEERS," == *",pyspark,"* ]] && ! command -v java >/dev/null; then
    echo "pyspark needs Java 17+ on PATH (apt-get install openjdk-17-jre-headless)" >&2
    exit 1
fi

# 2. The engine.
if [[ -z "${DUFF_BIN:-}" ]]; then
    (cd "$ROOT" && cargo build --release -p duff)
    DUFF_BIN="$ROOT/target/release/duff"
fi
[[ -x "$DUFF_BIN" ]] || { echo "not executable: $DUFF_BIN" >&2; exit 1; }

# 3. The input, generated once.
DATA="$ROOT/target/bench-data"
CSV="$DATA/orders-$SIZE.csv"
mkdir -p "$DATA"
if [[ ! -f "$CSV" || ! -f "$CSV.expected.json" ]]; then
    echo "generating $CSV"
    "$DUFF_BIN" datagen --out "$CSV" --size "$SIZE" --seed 1
fi

# 4. The comparison.
exec "$VENV/bin/python" "$HERE/compare.py" --csv "$CSV" --duff "$DUFF_BIN" --runs "$RUNS" \
    --peers "$PEERS" --threads "$THREADS" --work "$ROOT/target/bench-tmp" \
    --results "$ROOT/target/bench-results" "${EXTRA[@]}"
