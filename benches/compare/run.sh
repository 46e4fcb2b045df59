#!/usr/bin/env bash
# Compares the engine with DuckDB, Polars and PySpark (local mode) on one datagen file, in two
# tracks: the engine's exact contract, and each tool's idiomatic job.
#
#   benches/compare/run.sh [--size 1GiB | --csv FILE] [--runs 3] [--peers duckdb,polars,pyspark]
#                          [--track exact|idiomatic|both] [--threads 2] [--timeout 900] [--diff]
#                          [--no-scaling] [--max-bad-fraction F]
#
# DUFF_BIN=/path/to/duff skips the cargo build. The venv, the generated inputs and the reports
# live in cargo's target directory (CARGO_TARGET_DIR when set). See benches/compare/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/benches/compare"
# Where cargo puts the engine, and where the Rust benches cache their inputs too (a relative
# CARGO_TARGET_DIR is taken from the workspace root, where the build below runs cargo).
TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"
SIZE=1GiB
CSV=
RUNS=3
PEERS=duckdb,polars,pyspark
THREADS=2
EXTRA=()

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --size) SIZE="$2"; shift 2 ;;
        --csv) CSV="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
        --track) EXTRA+=(--track "$2"); shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --peers) PEERS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --timeout) EXTRA+=(--timeout "$2"); shift 2 ;;
        --diff) EXTRA+=(--diff); shift ;;
        --no-scaling) EXTRA+=(--no-scaling); shift ;;
        --max-bad-fraction) EXTRA+=(--max-bad-fraction "$2"); shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage 2 ;;
    esac
done

# 1. The peers, pinned, in a venv of their own.
VENV="$TARGET/bench-venv"
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
    DUFF_BIN="$TARGET/release/duff"
fi
[[ -x "$DUFF_BIN" ]] || { echo "not executable: $DUFF_BIN" >&2; exit 1; }

# 3. The input: a given file (such as edge_cases.csv), or a datagen file generated once.
if [[ -z "$CSV" ]]; then
    DATA="$TARGET/bench-data"
    CSV="$DATA/orders-$SIZE.csv"
    mkdir -p "$DATA"
    if [[ ! -f "$CSV" || ! -f "$CSV.expected.json" ]]; then
        echo "generating $CSV"
        "$DUFF_BIN" datagen --out "$CSV" --size "$SIZE" --seed 1
    fi
fi
[[ -f "$CSV" ]] || { echo "no such file: $CSV" >&2; exit 1; }

# 4. The comparison.
exec "$VENV/bin/python" "$HERE/compare.py" --csv "$CSV" --duff "$DUFF_BIN" --runs "$RUNS" \
    --peers "$PEERS" --threads "$THREADS" --work "$TARGET/bench-tmp" \
    --results "$TARGET/bench-results" "${EXTRA[@]}"
