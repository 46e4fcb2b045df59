"""What every peer job shares: the data contract as regular expressions, the header, the output.

The peers (peer_duckdb.py, peer_polars.py, peer_spark.py) each do the whole job inside their own
engine; this module only holds constants and the few lines of plain Python that run before the
job (reading the header line) or after it (printing the result).

Regular expressions are written in the common subset of RE2 (DuckDB), the Rust `regex` crate
(Polars) and java.util.regex (Spark): no look-around, no back-references.
"""

from __future__ import annotations

import json
import os
import sys
import time
from decimal import Decimal

# The contract's columns, in canonical order (engine/src/rules.rs REQUIRED_COLUMNS).
COLUMNS = [
    "client_id",
    "client_name",
    "order_id",
    "product_id",
    "product_description",
    "product_price",
    "product_ccf",
    "product_volume",
    "point_of_sale_channel",
    "status",
]

# Every reason code, in the order the rules are checked (engine/src/reason.rs Reason::ALL).
REASONS = [
    "bad_quoting",
    "unterminated_quote",
    "field_count",
    "invalid_utf8",
    "invalid_client_id",
    "empty_client_name",
    "invalid_order_id",
    "invalid_product_id",
    "empty_product_description",
    "invalid_product_price",
    "invalid_product_ccf",
    "invalid_product_volume",
    "unknown_channel",
    "unknown_status",
    "total_overflow",
    "key_conflict",
]

# (id, canonical spelling); matched case-insensitively; channels stored canonical, statuses lower.
STATUSES = [(1, "created"), (2, "delivered"), (3, "broken")]
CHANNELS = [(1, "Retail"), (2, "Online"), (3, "B2B")]

# Constant lineage, so every peer's output is deterministic. The engine's pa_date is set to the
# same value with --pa-date by compare.py.
PA_DATE = "2026-11-22"
INGESTED_AT = "2026-11-22 00:00:00"

# Largest DECIMAL(18,4): totals above it are `total_overflow`.
MAX_DECIMAL = "99999999999999.9999"

# --- Strict RFC 4180 as regular expressions -------------------------------------------------
# Loops are unrolled (`[^"]*(?:""[^"]*)*` rather than `(?:[^"]|"")*`): the same language, but
# java.util.regex (Spark) then recurses once per escaped quote, not once per character.
#
# Text inside a quoted field: any character, a `"` only doubled.
CONTENT = r'[^"]*(?:""[^"]*)*'
# A field: quoted (a `"` may only appear doubled inside) or unquoted (no `"` and no `,`).
FIELD = rf'(?:"{CONTENT}"|[^",]*)'
# A complete one-line record under the strict rules.
RE_COMPLETE = rf"^{FIELD}(?:,{FIELD})*$"
# A line that, read from a record start, ends inside an open quoted field and breaks no rule
# before that: the first line of a multi-line record.
RE_OPEN = rf'^(?:{FIELD},)*"{CONTENT}$'
# A line read from inside a quoted field that ends still inside one (a middle line).
RE_MID = rf'^{CONTENT}(?:"(?:,{FIELD})*,"{CONTENT})?$'
# A line read from inside a quoted field that closes it and then completes the record.
RE_CLOSE = rf'^{CONTENT}"(?:,{FIELD})*$'
# Applied to `record || ','` of a record that passed the strict rules: one match per field,
# group 1 is the field as written (still quoted).
RE_SPLIT = rf'("{CONTENT}"|[^",]*),'

# Values, applied to fields already trimmed of spaces and tabs.
RE_INT = r"^[0-9]+$"
RE_DECIMAL = r"^[0-9]+(\.[0-9]{1,4})?$"
# More than 14 integer digits once leading zeros are ignored: too large for DECIMAL(18,4).
RE_DECIMAL_TOO_LONG = r"^0*[1-9][0-9]{14,}"
# Both at once: a decimal that fits DECIMAL(18,4) exactly (at most 14 integer digits after any
# leading zeros, at most 4 fraction digits).
RE_DECIMAL_18_4 = r"^0*[0-9]{1,14}(\.[0-9]{1,4})?$"


def parse_header(path: str) -> tuple[dict[str, int], int]:
    """Position of each required column, and the number of fields every record must have.

    The header is matched like the engine does (trimmed, case-insensitive, any order, extra
    columns ignored). Reading one line is metadata, not part of the job being compared.
    """
    with open(path, "rb") as f:
        line = f.readline()
    if line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    text = line.rstrip(b"\n").rstrip(b"\r").decode("utf-8")
    names = []
    for raw in text.split(","):
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
            raw = raw[1:-1].replace('""', '"')
        names.append(raw.strip().lower())
    index = {}
    for col in COLUMNS:
        if col not in names:
            sys.exit(f"header of {path} lacks the column {col}: {names}")
        index[col] = names.index(col)
    return index, len(names)


def memory_budget_gib(path: str) -> int:
    """Memory for a peer that takes a budget (Spark's driver heap, DuckDB's memory_limit):
    4 × the file plus 2 GiB, between 3 and 16 GiB."""
    gib = os.path.getsize(path) / 2**30
    return max(3, min(16, int(4 * gib + 2.999)))


def source_uri(path: str) -> str:
    return "file://" + os.path.abspath(path)


def fixed4(value) -> str:
    """An exact decimal rendered with 4 fraction digits (None → "0.0000")."""
    if value is None:
        return "0.0000"
    return f"{Decimal(str(value)):.4f}"


class Phases:
    """Wall time per phase, reported on stderr and in the result (not used for the ranking)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.last = self.start
        self.ms: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.ms[name] = round((now - self.last) * 1000, 1)
        self.last = now

    def total(self) -> float:
        return round((time.perf_counter() - self.start) * 1000, 1)


def emit(
    *,
    rows_read: int,
    kept: int,
    exact_duplicates: int,
    rejected: int,
    sum_total_price,
    sum_total_volume,
    by_status: dict[str, int],
    by_reason: dict[str, int],
    blank_lines: int,
    phases: Phases,
) -> None:
    """Prints the one result line on stdout."""
    out = {
        "rows_read": int(rows_read),
        "kept": int(kept),
        "exact_duplicates": int(exact_duplicates),
        "rejected": int(rejected),
        "sum_total_price": fixed4(sum_total_price),
        "sum_total_volume": fixed4(sum_total_volume),
        "by_status": {name: int(by_status.get(name, 0)) for _, name in STATUSES},
        "rejected_by_reason": {
            r: int(by_reason[r]) for r in REASONS if by_reason.get(r)
        },
        "blank_lines": int(blank_lines),
        "phases_ms": {**phases.ms, "total": phases.total()},
    }
    print(json.dumps(out), flush=True)


def emit_idiomatic(
    *,
    rows_read: int,
    kept: int,
    rejected: int,
    duplicates_removed: int,
    sum_total_price,
    sum_total_volume,
    by_status: dict[str, int],
    phases: Phases,
) -> None:
    """Prints the result line of an idiomatic-track job: its own counts, under its own rules
    (`rejected`: what its reader refused plus the rows it dropped for a missing value)."""
    out = {
        "rows_read": int(rows_read),
        "kept": int(kept),
        "rejected": int(rejected),
        "duplicates_removed": int(duplicates_removed),
        "sum_total_price": fixed4(sum_total_price),
        "sum_total_volume": fixed4(sum_total_volume),
        "by_status": {str(k): int(v) for k, v in sorted(by_status.items(), key=lambda kv: str(kv[0]))},
        "phases_ms": {**phases.ms, "total": phases.total()},
    }
    print(json.dumps(out), flush=True)


def usage(argv: list[str], name: str) -> tuple[str, str, int]:
    if len(argv) != 4:
        sys.exit(f"usage: python {name} <csv> <outdir> <threads>")
    csv, outdir, threads = argv[1], argv[2], int(argv[3])
    if threads < 1:
        sys.exit("threads must be >= 1")
    return csv, outdir, threads
