#!/usr/bin/env bash
# A lake of N small runs on one day (Lambda-sized uploads, new orders each), the case
# `duff lake optimize` exists for: each run leaves one small file per table and partition.
#
#   benches/many_small_runs.sh <lake dir> [N=100] [rows=20000]
#   duff lake optimize --lake <lake dir>
#   cargo bench -p duff-api --bench latency -- --lake <lake dir>   (before and after)
#
# Needs a release `duff` (DUFF_BIN, default target/release/duff).
set -euo pipefail
lake="${1:?usage: many_small_runs.sh <lake dir> [N] [rows]}"
n="${2:-100}"
rows="${3:-20000}"
duff="${DUFF_BIN:-target/release/duff}"
inputs="$lake.inputs"
mkdir -p "$inputs"
for i in $(seq 1 "$n"); do
    file="$inputs/upload-$i.csv"
    "$duff" datagen --out "$file" --rows "$rows" --seed "$((1000 + i))" >/dev/null
    "$duff" run "$file" --lake "$lake" --no-progress --pa-date 2026-11-23 \
        --ingested-at "2026-11-23T$(printf %02d $((i / 60)))":"$(printf %02d $((i % 60)))":00Z >/dev/null
    rm -f "$file" "$file.expected.json"
done
rm -rf "$inputs"
