"""The engine's job done by DuckDB: `python peer_duckdb.py <csv> <outdir> <threads>`.

Everything below runs as SQL inside one in-memory DuckDB database with `SET threads=N`:

1. Physical lines. `read_csv` with no quote character and a delimiter that never occurs gives one
   VARCHAR per physical line, read in parallel; lines that are not valid UTF-8 go to DuckDB's
   rejects table (`store_rejects`), with their physical line number and a lossy copy of their text.
   Accepted lines are numbered in file order and the rejected ones are slotted back in, so every
   line has its physical number (header = 1), as in the engine's `source_line`.
2. Records. A line with an even number of `"` is a record on its own. Lines with an odd number (a
   small set) either open/close a quoted field that holds a newline, or carry a stray quote; a
   window over that small set pairs each opener with the next odd line and checks the pair under
   the strict RFC 4180 rules (`common.RE_OPEN`/`RE_MID`/`RE_CLOSE`). A valid pair becomes one
   record; otherwise only the first line is rejected and the next line starts afresh — the
   engine's recovery rule.
3. Fields. A record without `"` is split on commas; one with quotes must match the strict
   grammar (`RE_COMPLETE`) and is split with `regexp_extract_all`, then unquoted.
4. Rules, first failure wins, in the engine's order; decimals are DECIMAL(18,4), never floats.
5. Dedup on (order_id, product_id): a window keeps the first row by line, later rows are exact
   duplicates (same normalised values, compared by hash) or key conflicts.
6. Snappy Parquet: orders (partition pa_date=…), fact_orders, dim_clients, dim_products,
   dim_status, dim_channels, quarantine; plus the per-client/product/status aggregates.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import duckdb  # noqa: E402

from common import (  # noqa: E402
    CHANNELS,
    INGESTED_AT,
    MAX_DECIMAL,
    PA_DATE,
    RE_CLOSE,
    RE_COMPLETE,
    RE_DECIMAL,
    RE_DECIMAL_TOO_LONG,
    RE_INT,
    RE_MID,
    RE_OPEN,
    RE_SPLIT,
    STATUSES,
    Phases,
    emit,
    memory_budget_gib,
    parse_header,
    source_uri,
    usage,
)


def q(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "peer_duckdb.py")
    index, field_count = parse_header(csv)
    ph = Phases()
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    # The same memory budget as the Spark peer's driver; DuckDB spills beyond it.
    con.execute(f"SET memory_limit='{memory_budget_gib(csv)}GiB'")
    con.execute("SET preserve_insertion_order=true")
    tmp = os.path.join(outdir, "_duckdb_tmp")
    con.execute(f"SET temp_directory={q(tmp)}")

    # 1. Physical lines -------------------------------------------------------------------
    con.execute(
        f"""
        CREATE TEMP TABLE acc AS
        SELECT row_number() OVER () AS rn, coalesce(line, '') AS line
        FROM read_csv({q(csv)}, columns={{'line': 'VARCHAR'}}, header=false, delim=chr(31),
                      quote='', escape='', new_line='\\n', auto_detect=false,
                      strict_mode=false, store_rejects=true, max_line_size=1048576)
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE rej AS
        SELECT line AS ln, any_value(csv_line) AS line,
               bool_or(error_type = 'INVALID ENCODING') AS bad_utf8
        FROM reject_errors GROUP BY line
        """
    )
    n_rej = con.execute("SELECT count(*) FROM rej").fetchone()[0]
    if n_rej:
        # Accepted row rn sits after every rejected line i (1-based, ascending) whose
        # r_i - i < rn: shift it by that count.
        con.execute(
            """
            CREATE TEMP TABLE shift AS
            SELECT ln - i AS a, max(i) AS cnt
            FROM (SELECT ln, row_number() OVER (ORDER BY ln) AS i FROM rej) GROUP BY a
            """
        )
        numbered = """
            SELECT acc.rn + coalesce(shift.cnt, 0) AS ln, acc.line, false AS bad_utf8
            FROM acc ASOF LEFT JOIN shift ON acc.rn > shift.a
            UNION ALL SELECT ln, line, bad_utf8 FROM rej
        """
    else:
        numbered = "SELECT rn AS ln, line, false AS bad_utf8 FROM acc"
    # The header is line 1; a BOM only matters there.
    con.execute(
        f"""
        CREATE TEMP TABLE lines AS
        SELECT CAST(ln AS BIGINT) AS ln, line, bad_utf8,
               length(line) - length(replace(line, '"', '')) AS nq
        FROM ({numbered}) WHERE ln > 1
        """
    )
    con.execute("DROP TABLE acc")
    ph.mark("read_lines")

    # 2. Records: multi-line quoted fields and broken quotes ---------------------------------
    # `body` is the line without its CR (a record's last line loses its CR, like the engine).
    con.execute(
        f"""
        CREATE TEMP TABLE odd AS
        WITH o AS (
            SELECT ln, line, bad_utf8,
                   regexp_full_match(rtrim(line, chr(13)), {q(RE_OPEN)}) AS opens,
                   regexp_full_match(rtrim(line, chr(13)), {q(RE_CLOSE)}) AS closes,
                   row_number() OVER (ORDER BY ln) AS k
            FROM lines WHERE nq % 2 = 1
        ), p AS (
            SELECT *, lead(ln) OVER (ORDER BY ln) AS nxt,
                   lead(closes) OVER (ORDER BY ln) AS next_closes
            FROM o
        )
        SELECT * FROM p
        """
    )
    # Lines strictly between an opener and its closer must be valid middle lines.
    con.execute(
        f"""
        CREATE TEMP TABLE bad_gap AS
        SELECT DISTINCT g.k FROM (
            SELECT k, unnest(range(ln + 1, nxt)) AS mid FROM odd
            WHERE opens AND next_closes AND nxt > ln + 1
        ) g JOIN lines l ON l.ln = g.mid
        WHERE NOT regexp_full_match(l.line, {q(RE_MID)})
        """
    )
    # A run of valid pairs that share lines (a closer that also opens) is taken alternately
    # from its start: a closer consumed by one pair cannot open the next.
    con.execute(
        """
        CREATE TEMP TABLE pairs AS
        WITH v AS (
            SELECT odd.*, (opens AND coalesce(next_closes, false)
                           AND bad_gap.k IS NULL) AS ok
            FROM odd LEFT JOIN bad_gap USING (k)
        ), w AS (
            SELECT *, coalesce(max(CASE WHEN NOT ok THEN k END) OVER (
                ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 0) AS last_bad
            FROM v
        )
        SELECT ln, nxt FROM w WHERE ok AND (k - last_bad - 1) % 2 = 0
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE joined AS
        SELECT p.ln, string_agg(l.line, chr(10) ORDER BY l.ln) AS rec,
               bool_or(l.bad_utf8) AS bad_utf8
        FROM pairs p JOIN lines l ON l.ln BETWEEN p.ln AND p.nxt
        GROUP BY p.ln
        """
    )
    con.execute(
        "CREATE TEMP TABLE covered AS "
        "SELECT unnest(range(ln + 1, nxt + 1)) AS ln FROM pairs"
    )
    ph.mark("records")

    # Which line starts a record, and is its quoting valid?
    con.execute(
        f"""
        CREATE TEMP TABLE starts AS
        SELECT l.ln, coalesce(j.rec, rtrim(l.line, chr(13))) AS rec,
               coalesce(j.bad_utf8, l.bad_utf8) AS bad_utf8,
               CASE WHEN j.ln IS NOT NULL THEN 'ok'
                    WHEN l.nq = 0 THEN 'ok'
                    WHEN l.nq % 2 = 1 THEN
                        CASE WHEN regexp_full_match(rtrim(l.line, chr(13)), {q(RE_OPEN)})
                             THEN 'unterminated_quote' ELSE 'bad_quoting' END
                    WHEN regexp_full_match(rtrim(l.line, chr(13)), {q(RE_COMPLETE)}) THEN 'ok'
                    ELSE 'bad_quoting' END AS quoting
        FROM lines l
        ANTI JOIN covered c ON c.ln = l.ln
        LEFT JOIN joined j ON j.ln = l.ln
        WHERE j.ln IS NOT NULL OR rtrim(l.line, chr(13)) <> ''
        """
    )
    blank_lines = con.execute(
        "SELECT count(*) FROM lines l ANTI JOIN covered c ON c.ln = l.ln "
        "WHERE rtrim(l.line, chr(13)) = ''"
    ).fetchone()[0]
    con.execute("DROP TABLE lines")
    rows_read = con.execute("SELECT count(*) FROM starts").fetchone()[0]
    ph.mark("records")

    # 3. Fields: every record that passed the strict quoting rules is written, prefixed with its
    # line number and followed by a sentinel field (DuckDB ignores one trailing empty field), to a
    # scratch CSV that DuckDB's own (parallel, RFC 4180) reader splits; records with the wrong
    # number of fields land in its rejects table, their line number in front.
    os.makedirs(tmp, exist_ok=True)
    scratch = os.path.join(tmp, "records.csv")
    con.execute(
        f"""COPY (SELECT CAST(ln AS VARCHAR) || ',' || rec || ',~' FROM starts
                  WHERE quoting = 'ok' AND NOT bad_utf8)
            TO {q(scratch)} (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER chr(30))"""
    )
    cols = ", ".join(
        ["'ln': 'BIGINT'"] + [f"'f{i}': 'VARCHAR'" for i in range(field_count)] + ["'end': 'VARCHAR'"]
    )
    con.execute(
        f"""
        CREATE TEMP TABLE fields AS
        SELECT * EXCLUDE ("end") FROM read_csv({q(scratch)}, columns={{{cols}}}, header=false, delim=',',
                               quote='"', escape='"', auto_detect=false, strict_mode=true,
                               null_padding=false, store_rejects=true,
                               rejects_table='fields_rejects', rejects_scan='fields_scans',
                               max_line_size=1048576)
        """
    )
    os.remove(scratch)
    other = con.execute(
        "SELECT DISTINCT error_type FROM fields_rejects "
        "WHERE error_type NOT IN ('MISSING COLUMNS', 'TOO MANY COLUMNS')"
    ).fetchall()
    if other:
        print(f"peer_duckdb: unexpected reader errors {other}", file=sys.stderr)
    # Lines that are not valid UTF-8 were not re-read: count their fields with a regex.
    split_count = f"len(regexp_extract_all(rec || ',', {q(RE_SPLIT)}, 1))"
    ph.mark("split_fields")

    # 4. Rules, first failure wins ---------------------------------------------------------------
    def fld(col: str) -> str:
        return f"trim(coalesce(f{index[col]}, ''), ' ' || chr(9))"

    def int_ok(v: str) -> str:
        return (
            f"(regexp_full_match({v}, {q(RE_INT)}) AND TRY_CAST({v} AS BIGINT) IS NOT NULL "
            f"AND TRY_CAST({v} AS BIGINT) > 0)"
        )

    def dec_ok(v: str) -> str:
        return (
            f"(regexp_full_match({v}, {q(RE_DECIMAL)}) "
            f"AND NOT regexp_matches({v}, {q(RE_DECIMAL_TOO_LONG)}))"
        )

    status_case = " ".join(f"WHEN '{n}' THEN '{n}'" for _, n in STATUSES)
    channel_case = " ".join(f"WHEN '{n.lower()}' THEN '{n}'" for _, n in CHANNELS)
    con.execute(
        f"""
        CREATE TEMP TABLE valid AS
        WITH vals AS (
            SELECT ln,
                   {fld('client_id')} AS client_id_s, {fld('client_name')} AS client_name,
                   {fld('order_id')} AS order_id_s, {fld('product_id')} AS product_id_s,
                   {fld('product_description')} AS product_description,
                   {fld('product_price')} AS price_s, {fld('product_ccf')} AS ccf_s,
                   {fld('product_volume')} AS volume_s,
                   lower({fld('point_of_sale_channel')}) AS channel_s,
                   lower({fld('status')}) AS status_s
            FROM fields
        ), typed AS (
            SELECT *,
                   CASE WHEN {int_ok('client_id_s')} THEN CAST(client_id_s AS BIGINT) END AS client_id,
                   CASE WHEN {int_ok('order_id_s')} THEN CAST(order_id_s AS BIGINT) END AS order_id,
                   CASE WHEN {int_ok('product_id_s')} THEN CAST(product_id_s AS BIGINT) END AS product_id,
                   CASE WHEN {dec_ok('price_s')} THEN CAST(price_s AS DECIMAL(18,4)) END AS product_price,
                   CASE WHEN {int_ok('ccf_s')} THEN CAST(ccf_s AS BIGINT) END AS product_ccf,
                   CASE WHEN {dec_ok('volume_s')} THEN CAST(volume_s AS DECIMAL(18,4)) END AS product_volume,
                   CASE channel_s {channel_case} END AS point_of_sale_channel,
                   CASE status_s {status_case} END AS status
            FROM vals
        )
        SELECT ln, client_id, client_name, order_id, product_id, product_description,
               product_price, product_ccf, product_volume, point_of_sale_channel, status,
               CASE WHEN reason IS NULL THEN CAST(product_price * product_ccf AS DECIMAL(18,4)) END AS total_price,
               CASE WHEN reason IS NULL THEN CAST(product_volume * product_ccf AS DECIMAL(18,4)) END AS total_volume,
               reason
        FROM (
            SELECT *, CASE
                WHEN client_id IS NULL THEN 'invalid_client_id'
                WHEN client_name = '' THEN 'empty_client_name'
                WHEN order_id IS NULL THEN 'invalid_order_id'
                WHEN product_id IS NULL THEN 'invalid_product_id'
                WHEN product_description = '' THEN 'empty_product_description'
                WHEN product_price IS NULL THEN 'invalid_product_price'
                WHEN product_ccf IS NULL THEN 'invalid_product_ccf'
                WHEN product_volume IS NULL OR product_volume = 0 THEN 'invalid_product_volume'
                WHEN point_of_sale_channel IS NULL THEN 'unknown_channel'
                WHEN status IS NULL THEN 'unknown_status'
                WHEN product_price * product_ccf > {MAX_DECIMAL}
                  OR product_volume * product_ccf > {MAX_DECIMAL} THEN 'total_overflow'
            END AS reason FROM typed
        )
        """
    )
    con.execute("DROP TABLE fields")
    # Every rejected record with its reason (the key conflicts come after dedup).
    con.execute(
        f"""
        CREATE TEMP TABLE bad AS
        SELECT ln, reason FROM valid WHERE reason IS NOT NULL
        UNION ALL
        SELECT CAST(regexp_extract(any_value(csv_line), '^[0-9]+') AS BIGINT), 'field_count'
        FROM fields_rejects GROUP BY line
        UNION ALL
        SELECT ln, quoting FROM starts WHERE quoting <> 'ok'
        UNION ALL
        SELECT ln, CASE WHEN {split_count} <> {field_count} THEN 'field_count'
                        ELSE 'invalid_utf8' END
        FROM starts WHERE quoting = 'ok' AND bad_utf8
        """
    )
    ph.mark("validate")

    # 5. Dedup: first occurrence by line wins ----------------------------------------------------
    # The window runs over a narrow projection; the kept rows are then taken from `valid`.
    con.execute(
        """
        CREATE TEMP TABLE judged AS
        SELECT ln, kept_line,
               CASE WHEN ln = kept_line THEN 'kept'
                    WHEN fp = first_fp THEN 'duplicate' ELSE 'key_conflict' END AS verdict
        FROM (
            SELECT ln, fp, first_value(ln) OVER w AS kept_line, first_value(fp) OVER w AS first_fp
            FROM (
                SELECT ln, order_id, product_id,
                       hash(client_id, client_name, product_description, product_price,
                            product_ccf, product_volume, point_of_sale_channel, status) AS fp
                FROM valid WHERE reason IS NULL
            )
            WINDOW w AS (PARTITION BY order_id, product_id ORDER BY ln
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        )
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE kept AS
        SELECT v.* EXCLUDE (reason) FROM valid v
        SEMI JOIN (SELECT ln FROM judged WHERE verdict = 'kept') k ON v.ln = k.ln
        ORDER BY v.ln
        """
    )
    con.execute("DROP TABLE valid")
    ph.mark("dedup")

    # 6. Parquet -------------------------------------------------------------------------------
    src = q(source_uri(csv))
    lineage = (
        f"{src} AS source_file, ln AS source_line, "
        f"TIMESTAMPTZ '{INGESTED_AT}+00' AS ingested_at, 'duckdb' AS run_id"
    )
    pq = "FORMAT parquet, COMPRESSION snappy"

    def copy(select: str, path: str, partitioned: bool = True) -> None:
        target = os.path.join(outdir, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if partitioned:
            con.execute(
                f"COPY (SELECT *, '{PA_DATE}' AS pa_date FROM ({select})) TO {q(target)} "
                f"({pq}, PARTITION_BY (pa_date))"
            )
        else:
            con.execute(f"COPY ({select}) TO {q(target)} ({pq})")

    copy(
        f"""SELECT {src} AS source_file, b.ln AS source_line, b.reason, s.rec AS raw_text,
                   b.kept_line, TIMESTAMPTZ '{INGESTED_AT}+00' AS ingested_at,
                   'duckdb' AS run_id
            FROM (SELECT ln, reason, CAST(NULL AS BIGINT) AS kept_line FROM bad
                  UNION ALL
                  SELECT ln, 'key_conflict', kept_line FROM judged
                  WHERE verdict = 'key_conflict') b
            JOIN starts s ON s.ln = b.ln
            ORDER BY source_line""",
        "quarantine",
    )
    con.execute("DROP TABLE starts")
    status_id = "CASE status " + " ".join(f"WHEN '{n}' THEN {i}" for i, n in STATUSES) + " END"
    channel_id = (
        "CASE point_of_sale_channel "
        + " ".join(f"WHEN '{n}' THEN {i}" for i, n in CHANNELS)
        + " END"
    )
    copy(
        f"""SELECT client_id, client_name, order_id, product_id, product_description,
                   product_price, product_ccf, product_volume, point_of_sale_channel, status,
                   total_price, total_volume, {lineage} FROM kept""",
        "orders",
    )
    copy(
        f"""SELECT order_id, product_id, client_id, CAST({status_id} AS INTEGER) AS status_id,
                   CAST({channel_id} AS INTEGER) AS channel_id, product_ccf AS units,
                   product_price AS unit_price, total_price, total_volume, {lineage}
            FROM kept""",
        "model/fact_orders",
    )
    copy(
        f"""SELECT client_id, arg_max(client_name, ln) AS client_name,
                   TIMESTAMPTZ '{INGESTED_AT}+00' AS ingested_at, 'duckdb' AS run_id
            FROM kept GROUP BY client_id ORDER BY client_id""",
        "model/dim_clients",
    )
    copy(
        f"""SELECT product_id, arg_max(product_description, ln) AS product_description,
                   arg_max(product_price, ln) AS product_price,
                   arg_max(product_volume, ln) AS product_volume,
                   TIMESTAMPTZ '{INGESTED_AT}+00' AS ingested_at, 'duckdb' AS run_id
            FROM kept GROUP BY product_id ORDER BY product_id""",
        "model/dim_products",
    )
    values = ", ".join(f"({i}, '{n}')" for i, n in STATUSES)
    copy(f"SELECT * FROM (VALUES {values}) t(status_id, status)", "model/dim_status")
    values = ", ".join(f"({i}, '{n}')" for i, n in CHANNELS)
    copy(f"SELECT * FROM (VALUES {values}) t(channel_id, channel)", "model/dim_channels")
    ph.mark("write")

    # Aggregates (part of the job) ---------------------------------------------------------------
    for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
        copy(
            f"""SELECT {key}, count(*) AS orders, sum(product_ccf) AS units,
                       sum(total_price) AS total_price
                FROM kept GROUP BY {key} ORDER BY {key}""",
            f"aggregates/{name}.parquet",
            partitioned=False,
        )
    by_status = dict(con.execute("SELECT status, count(*) FROM kept GROUP BY status").fetchall())
    ph.mark("aggregates")

    rejected_rules = con.execute("SELECT count(*) FROM bad").fetchone()[0]
    counts = dict(con.execute("SELECT verdict, count(*) FROM judged GROUP BY verdict").fetchall())
    by_reason = dict(
        con.execute(
            "SELECT reason, count(*) FROM bad GROUP BY reason"
        ).fetchall()
    )
    by_reason["key_conflict"] = counts.get("key_conflict", 0)
    sum_price, sum_volume = con.execute(
        "SELECT sum(total_price), sum(total_volume) FROM kept"
    ).fetchone()
    con.close()
    emit(
        rows_read=rows_read,
        kept=counts.get("kept", 0),
        exact_duplicates=counts.get("duplicate", 0),
        rejected=rejected_rules + counts.get("key_conflict", 0),
        sum_total_price=sum_price,
        sum_total_volume=sum_volume,
        by_status=by_status,
        by_reason=by_reason,
        blank_lines=blank_lines,
        phases=ph,
    )


if __name__ == "__main__":
    main()
