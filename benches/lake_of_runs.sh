#!/usr/bin/env bash
# A lake of N daily 1 GiB runs, one of which re-delivers 20% of the first day's orders (whole
# orders, `duff datagen --redeliver-from`) with their next status: the lake the report-latency target is measured on at scale.
#
#   benches/lake_of_runs.sh <lake dir> [N=10] [size=1GiB]
#   cargo bench -p duff-api --bench latency -- --lake <lake dir>
#
# Needs a release `duff` (DUFF_BIN, default target/release/duff). Inputs go to
# <lake dir>.inputs/ and are removed after their run.
set -euo pipefail
lake="${1:?usage: lake_of_runs.sh <lake dir> [N] [size]}"
n="${2:-10}"
size="${3:-1GiB}"
duff="${DUFF_BIN:-target/release/duff}"
inputs="$lake.inputs"
mkdir -p "$inputs"
for day in $(seq 1 "$((n - 1))"); do
    file="$inputs/day-$day.csv"
    "$duff" datagen --out "$file" --size "$size" --seed "$day" >/dev/null
    if [ "$day" = 1 ]; then
        # A fifth of day 1's orders, re-delivered on the last day with their next status.
        "$duff" datagen --redeliver-from "$file" --redeliver-fraction 0.2 --seed 1 \
            --out "$inputs/redelivery.csv" >/dev/null
    fi
    "$duff" run "$file" --lake "$lake" --no-progress \
        --pa-date "2026-11-$(printf %02d "$day")" --ingested-at "2026-11-$(printf %02d "$day")T06:00:00Z"
    rm -f "$file" "$file.expected.json"
done
"$duff" run "$inputs/redelivery.csv" --lake "$lake" --no-progress \
    --pa-date "2026-11-$(printf %02d "$n")" --ingested-at "2026-11-$(printf %02d "$n")T06:00:00Z"
rm -rf "$inputs"
