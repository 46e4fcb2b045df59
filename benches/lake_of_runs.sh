#!/usr/bin/env bash
# A lake of N daily 1 GiB runs, one of which re-delivers 20% of the first day's lines with a
# new status: the lake the report-latency target is measured on at scale.
#
#   benches/lake_of_runs.sh <lake dir> [N=10] [size=1GiB]
#   cargo bench -p duff-api --bench latency -- --lake <lake dir>
#
# Needs a release `duff` (DUFF_BIN, default target/release/duff) and python3. Inputs go to
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
        # Every fifth line of day 1, re-delivered on the last day with the next status.
        python3 - "$file" "$inputs/redelivery.csv" <<'PY'
import csv, sys
src, dst = sys.argv[1], sys.argv[2]
nxt = {"created": "delivered", "delivered": "broken", "broken": "created"}
# latin-1 keeps every byte as it is (the dirt includes invalid UTF-8).
with open(src, newline="", encoding="latin-1") as f, \
        open(dst, "w", newline="", encoding="latin-1") as g:
    r, w = csv.reader(f), csv.writer(g)
    header = next(r)
    w.writerow(header)
    at = [h.strip().lower() for h in header].index("status")
    for i, row in enumerate(r):
        if i % 5 == 0 and len(row) == len(header):
            row[at] = nxt.get(row[at].strip().lower(), "created")
            w.writerow(row)
PY
    fi
    "$duff" run "$file" --lake "$lake" --no-progress \
        --pa-date "2026-11-$(printf %02d "$day")" --ingested-at "2026-11-$(printf %02d "$day")T06:00:00Z"
    rm -f "$file" "$file.expected.json"
done
"$duff" run "$inputs/redelivery.csv" --lake "$lake" --no-progress \
    --pa-date "2026-11-$(printf %02d "$n")" --ingested-at "2026-11-$(printf %02d "$n")T06:00:00Z"
rm -rf "$inputs"
