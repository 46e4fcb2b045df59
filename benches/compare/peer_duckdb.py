"""The engine's job done by DuckDB: `python peer_duckdb.py <csv> <outdir> <threads>`.

Everything runs as SQL in one in-memory DuckDB database (`SET threads=N`), the way a DuckDB
user writes a load-then-transform job:

1. Load. `read_csv` with no quote character reads one VARCHAR per physical line, in parallel,
   into a table. DuckDB keeps insertion order, so the table's `rowid` numbers the lines with no
   window over the scan (`row_number() OVER ()` would run the read on one thread). Lines that are
   not UTF-8 go to DuckDB's rejects table with their line number; an ASOF join shifts the
   numbers of the lines after them.
2. Multi-line records. Only the ~3% of lines with an odd number of `"` can start or end one: a
   window over those pairs each with the next, and the strict RFC 4180 regexes of common.py
   decide whether the pair is one record or whether only its first line is rejected (the
   engine's recovery).
3. Parse and validate, one parallel pass into a table of typed rows: every other line is a
   one-line record, split on commas (`string_split`); one that holds quotes must follow the
   strict grammar and has its quoted commas set aside while splitting. Every rule is checked in
   the engine's order and the first failure is the reason. DECIMAL(18,4), never floats.
4. Dedup: `GROUP BY order_id, product_id HAVING count(*) > 1` finds the few repeated keys; only
   their rows are ranked by line (a window over a few percent of the rows) into the first
   occurrence, exact duplicates (same normalised values, compared by `hash`) and key conflicts.
5. Snappy Parquet (`COPY`): orders (pa_date=…/), fact_orders, dim_clients, dim_products,
   dim_status, dim_channels, quarantine; then the per-client/product/status aggregates. Output
   row order is not part of the contract, so nothing is sorted to restore it.
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
    RE_DECIMAL_18_4,
    RE_INT,
    RE_MID,
    RE_OPEN,
    STATUSES,
    Phases,
    emit,
    memory_budget_gib,
    parse_header,
    source_uri,
    usage,
)


# A line with an odd number of quotes: it opens or closes a multi-line record, or is broken.
ODD = """(contains(line, '"') AND len(string_split(line, '"')) % 2 = 0)"""
# A blank line (CRs only count as blank, as in the engine).
BLANK = "(line = '' OR (ends_with(line, chr(13)) AND rtrim(line, chr(13)) = ''))"


def q(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def body(col: str = "line") -> str:
    """A line without its CR: the record the engine reads from a one-line record."""
    return f"(CASE WHEN ends_with({col}, chr(13)) THEN {col}[:-2] ELSE {col} END)"


def validated(source: str, index: dict[str, int], field_count: int) -> str:
    """A SELECT typing the fields of every record of `source` and naming its first broken rule.

    `source` has `ln`, `fs` (the record's fields as written, unquoted), `quoting` ('ok' or the
    quoting reason) and `bad_utf8`."""

    def fld(col: str) -> str:
        # Trimming with a character set is slow in DuckDB: only done where there is a blank.
        f = f"f{index[col]}"
        return f"(CASE WHEN regexp_matches({f}, '^[ \t]|[ \t]$') THEN trim({f}, ' \t') ELSE {f} END)"

    def int_val(v: str) -> str:
        # Digits only, so the cast fails (NULL) only on overflow; zero is not an id either.
        return f"CASE WHEN regexp_full_match({v}, {q(RE_INT)}) THEN nullif(TRY_CAST({v} AS BIGINT), 0) END"

    def dec_val(v: str) -> str:
        return f"CASE WHEN regexp_full_match({v}, {q(RE_DECIMAL_18_4)}) THEN CAST({v} AS DECIMAL(18,4)) END"

    status = " ".join(f"WHEN '{n}' THEN '{n}'" for _, n in STATUSES)
    channel = " ".join(f"WHEN '{n.lower()}' THEN '{n}'" for _, n in CHANNELS)
    return f"""
        WITH raw AS (
            SELECT ln, quoting, bad_utf8, len(fs) AS nf,
                   {", ".join(f"coalesce(fs[{i + 1}], '') AS f{i}" for i in sorted(index.values()))}
            FROM ({source})
        ), vals AS (
            SELECT ln, quoting, bad_utf8, nf,
                   {fld('client_id')} AS client_id_s, {fld('client_name')} AS client_name,
                   {fld('order_id')} AS order_id_s, {fld('product_id')} AS product_id_s,
                   {fld('product_description')} AS product_description,
                   {fld('product_price')} AS price_s, {fld('product_ccf')} AS ccf_s,
                   {fld('product_volume')} AS volume_s,
                   lower({fld('point_of_sale_channel')}) AS channel_s,
                   lower({fld('status')}) AS status_s
            FROM raw
        ), typed AS (
            SELECT ln, quoting, bad_utf8, nf, client_name, product_description,
                   {int_val('client_id_s')} AS client_id,
                   {int_val('order_id_s')} AS order_id,
                   {int_val('product_id_s')} AS product_id,
                   {dec_val('price_s')} AS product_price,
                   {int_val('ccf_s')} AS product_ccf,
                   {dec_val('volume_s')} AS product_volume,
                   CASE channel_s {channel} END AS point_of_sale_channel,
                   CASE status_s {status} END AS status
            FROM vals
        ), judged AS (
            SELECT *, CASE
                WHEN quoting <> 'ok' THEN quoting
                WHEN nf <> {field_count} THEN 'field_count'
                WHEN bad_utf8 THEN 'invalid_utf8'
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
        SELECT ln, client_id, client_name, order_id, product_id, product_description,
               product_price, product_ccf, product_volume, point_of_sale_channel, status,
               CASE WHEN reason IS NULL THEN CAST(product_price * product_ccf AS DECIMAL(18,4)) END AS total_price,
               CASE WHEN reason IS NULL THEN CAST(product_volume * product_ccf AS DECIMAL(18,4)) END AS total_volume,
               reason
        FROM judged
    """


class Job:
    """One run of the job: a DuckDB connection and the steps, in order (see `main`)."""

    def __init__(self, csv: str, outdir: str, threads: int) -> None:
        self.csv, self.outdir = csv, outdir
        self.index, self.field_count = parse_header(csv)
        self.con = duckdb.connect()
        self.sql(f"SET threads={threads}")
        # The same memory budget as the Spark peer's driver; DuckDB spills beyond it.
        self.sql(f"SET memory_limit='{memory_budget_gib(csv)}GiB'")
        # Insertion order is what numbers the lines (the default, stated because it matters).
        self.sql("SET preserve_insertion_order=true")
        self.sql(f"SET temp_directory={q(os.path.join(outdir, '_duckdb_tmp'))}")

    def sql(self, text: str):
        return self.con.execute(text)

    def scalar(self, text: str):
        return self.sql(text).fetchone()[0]

    # 1. Load ------------------------------------------------------------------------------------
    def load(self) -> None:
        self.sql(
            f"""
            CREATE TEMP TABLE l AS
            SELECT coalesce(line, '') AS line
            FROM read_csv({q(self.csv)}, columns={{'line': 'VARCHAR'}}, header=false,
                          delim=chr(31), quote='', escape='', new_line='\\n', auto_detect=false,
                          strict_mode=false, store_rejects=true, max_line_size=1048576)
            """
        )
        self.sql(
            """
            CREATE TEMP TABLE rej AS
            SELECT CAST(line AS BIGINT) AS ln, any_value(csv_line) AS line
            FROM reject_errors GROUP BY line
            """
        )
        # Accepted line `rowid` (0-based) comes after rejected line i (1-based, ascending) when
        # rowid >= ln_i - i; it is shifted by the largest such i.
        self.sql(
            """
            CREATE TEMP TABLE shift AS
            SELECT ln - i AS a, max(i) AS cnt
            FROM (SELECT ln, row_number() OVER (ORDER BY ln) AS i FROM rej) GROUP BY a
            """
        )
        self.has_rejects = self.scalar("SELECT count(*) FROM rej") > 0

    def lines(self, where: str) -> str:
        """Lines (`ln`, `line`, `bad_utf8`) matching `where`, accepted and rejected, numbered."""
        if self.has_rejects:
            accepted = f"""
                SELECT l.rowid + 1 + coalesce(s.cnt, 0) AS ln, l.line, false AS bad_utf8
                FROM (SELECT rowid, line FROM l WHERE {where}) l
                ASOF LEFT JOIN shift s ON l.rowid >= s.a
            """
        else:
            accepted = f"SELECT rowid + 1 AS ln, line, false AS bad_utf8 FROM l WHERE {where}"
        return f"({accepted} UNION ALL SELECT ln, line, true FROM rej WHERE {where})"

    def text_of(self, lns: str) -> str:
        """(`ln`, `line`, `bad_utf8`) of the few lines whose numbers the query `lns` lists: an
        accepted line is found by its rowid, its number less the rejected lines before it."""
        return f"""(
            SELECT w.ln, l.line, false AS bad_utf8
            FROM (
                SELECT ln, ln - 1 - (SELECT count(*) FROM rej WHERE rej.ln < n.ln) AS lid
                FROM ({lns}) n WHERE ln NOT IN (SELECT ln FROM rej)
            ) w JOIN l ON l.rowid = w.lid
            UNION ALL SELECT ln, line, true FROM rej WHERE ln IN (SELECT ln FROM ({lns}))
        )"""

    # 2. Multi-line records and broken quotes ------------------------------------------------------
    def odd_lines(self) -> None:
        """The few lines with an odd number of quotes, paired into multi-line records."""
        self.sql(
            f"""
            CREATE TEMP TABLE odd AS
            WITH o AS (
                SELECT ln, line, bad_utf8,
                       regexp_full_match({body()}, {q(RE_OPEN)}) AS opens,
                       regexp_full_match({body()}, {q(RE_CLOSE)}) AS closes
                FROM {self.lines(ODD)} WHERE ln > 1
            )
            SELECT ln, line, bad_utf8, opens, row_number() OVER w AS k, lead(ln) OVER w AS nxt,
                   coalesce(lead(closes) OVER w, false) AS next_closes
            FROM o WINDOW w AS (ORDER BY ln)
            """
        )
        # Lines between an opener and its closer must stay inside the quoted field. They are
        # rare (a field holding two line ends or more): fetched by number.
        gaps = "SELECT unnest(range(ln + 1, nxt)) AS ln FROM odd WHERE opens AND next_closes"
        self.sql(f"CREATE TEMP TABLE gap AS SELECT * FROM {self.text_of(gaps)}")
        self.sql(
            f"""
            CREATE TEMP TABLE pairs AS
            WITH bad_gap AS (
                SELECT DISTINCT o.k FROM odd o JOIN gap g ON g.ln > o.ln AND g.ln < o.nxt
                WHERE NOT regexp_full_match(g.line, {q(RE_MID)})
            ), v AS (
                SELECT odd.*, opens AND next_closes AND bad_gap.k IS NULL AS ok
                FROM odd LEFT JOIN bad_gap USING (k)
            ), w AS (
                SELECT *, coalesce(max(CASE WHEN NOT ok THEN k END) OVER (
                    ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 0) AS last_bad
                FROM v
            )
            -- A closer that also opens is taken by the pair before it: in a run of valid pairs
            -- sharing lines, every other one from the run's start is a record.
            SELECT ln, nxt FROM w WHERE ok AND (k - last_bad - 1) % 2 = 0
            """
        )
        self.sql("CREATE TEMP TABLE covered AS SELECT unnest(range(ln + 1, nxt + 1)) AS ln FROM pairs")
        members = "SELECT ln, line, bad_utf8 FROM odd UNION ALL SELECT * FROM gap"
        self.sql(
            f"""
            CREATE TEMP TABLE qrec AS
            SELECT p.ln, {body("string_agg(m.line, chr(10) ORDER BY m.ln)")} AS rec,
                   bool_or(m.bad_utf8) AS bad_utf8, 'ok' AS quoting
            FROM pairs p JOIN ({members}) m ON m.ln BETWEEN p.ln AND p.nxt
            GROUP BY p.ln
            UNION ALL
            SELECT ln, {body()}, bad_utf8,
                   CASE WHEN opens THEN 'unterminated_quote' ELSE 'bad_quoting' END
            FROM odd ANTI JOIN covered USING (ln) ANTI JOIN pairs USING (ln)
            """
        )

    # 3. Parse and validate ------------------------------------------------------------------------
    def parse(self) -> None:
        # A one-line record is split on its commas; one with quotes must follow the strict
        # grammar first, and its quoted commas are set aside (as \x1f, which no line read here
        # can hold: it is the reader's delimiter) while splitting.
        protect = """array_to_string(list_transform(string_split(rec, '"'),
                         lambda p, i: CASE WHEN i % 2 = 0 THEN replace(p, ',', chr(31)) ELSE p END), '"')"""
        unquote = """lambda f: replace(CASE WHEN starts_with(f, '"') THEN replace(f[2:-2], '""', '"')
                                             ELSE f END, chr(31), ',')"""
        quoted_fields = f"list_transform(string_split({protect}, ','), {unquote})"
        single = f"SELECT ln, {body()} AS rec, bad_utf8 FROM {self.lines(f'NOT {ODD} AND NOT {BLANK}')}"
        records = f"""
            SELECT ln,
                   CASE WHEN NOT contains(rec, '"') THEN string_split(rec, ',')
                        WHEN regexp_full_match(rec, {q(RE_COMPLETE)}) THEN {quoted_fields} END AS fs,
                   CASE WHEN NOT contains(rec, '"') OR regexp_full_match(rec, {q(RE_COMPLETE)})
                        THEN 'ok' ELSE 'bad_quoting' END AS quoting,
                   bad_utf8
            FROM ({single}) ANTI JOIN covered USING (ln) WHERE ln > 1
            UNION ALL
            SELECT ln, CASE WHEN quoting = 'ok' THEN {quoted_fields} END, quoting, bad_utf8 FROM qrec
        """
        self.sql(f"CREATE TEMP TABLE r AS {validated(records, self.index, self.field_count)}")
        self.rows_read = self.scalar("SELECT count(*) FROM r")
        blank = self.lines(BLANK)
        self.blank_lines = self.scalar(f"SELECT count(*) FROM {blank} ANTI JOIN covered USING (ln)")

    # 4. Dedup -------------------------------------------------------------------------------------
    def dedup(self) -> None:
        self.sql(
            """
            CREATE TEMP TABLE repeated AS
            SELECT order_id, product_id FROM r WHERE reason IS NULL
            GROUP BY order_id, product_id HAVING count(*) > 1
            """
        )
        self.sql(
            """
            CREATE TEMP TABLE dropped AS
            SELECT ln, kept_line,
                   CASE WHEN fp = first_fp THEN 'duplicate' ELSE 'key_conflict' END AS verdict
            FROM (
                SELECT ln, fp, first_value(ln) OVER w AS kept_line, first_value(fp) OVER w AS first_fp
                FROM (
                    SELECT ln, order_id, product_id,
                           hash(client_id, client_name, product_description, product_price,
                                product_ccf, product_volume, point_of_sale_channel, status) AS fp
                    FROM r SEMI JOIN repeated USING (order_id, product_id)
                    WHERE reason IS NULL
                )
                WINDOW w AS (PARTITION BY order_id, product_id ORDER BY ln)
            )
            WHERE ln <> kept_line
            """
        )

    # 5. Parquet -----------------------------------------------------------------------------------
    def copy(self, select: str, path: str) -> None:
        target = os.path.join(self.outdir, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.sql(f"COPY ({select}) TO {q(target)} (FORMAT parquet, COMPRESSION snappy)")

    def write_quarantine(self) -> None:
        rejected = """
            SELECT ln, reason, CAST(NULL AS BIGINT) AS kept_line FROM r WHERE reason IS NOT NULL
            UNION ALL SELECT ln, 'key_conflict', kept_line FROM dropped WHERE verdict = 'key_conflict'
        """
        self.sql(f"CREATE TEMP TABLE rejected AS {rejected}")
        one_line_rejects = self.text_of("SELECT ln FROM rejected ANTI JOIN qrec USING (ln)")
        one_line = f"SELECT ln, {body()} AS rec FROM {one_line_rejects}"
        self.copy(
            f"""SELECT {q(source_uri(self.csv))} AS source_file, b.ln AS source_line, b.reason,
                       t.rec AS raw_text, b.kept_line,
                       TIMESTAMPTZ '{INGESTED_AT}+00' AS ingested_at, 'duckdb' AS run_id
                FROM rejected b
                JOIN (SELECT ln, rec FROM qrec UNION ALL {one_line}) t USING (ln)""",
            f"quarantine/pa_date={PA_DATE}/part-0.parquet",
        )

    def write_tables(self) -> None:
        # From here on `r` holds exactly the kept rows.
        self.sql("DELETE FROM r WHERE reason IS NOT NULL OR ln IN (SELECT ln FROM dropped)")
        self.sql("DROP TABLE l")
        lineage = (
            f"{q(source_uri(self.csv))} AS source_file, ln AS source_line, "
            f"TIMESTAMPTZ '{INGESTED_AT}+00' AS ingested_at, 'duckdb' AS run_id"
        )
        part = f"pa_date={PA_DATE}/part-0.parquet"
        self.copy(
            f"""SELECT client_id, client_name, order_id, product_id, product_description,
                       product_price, product_ccf, product_volume, point_of_sale_channel, status,
                       total_price, total_volume, {lineage} FROM r""",
            f"orders/{part}",
        )
        status_id = "CASE status " + " ".join(f"WHEN '{n}' THEN {i}" for i, n in STATUSES) + " END"
        channel_id = (
            "CASE point_of_sale_channel "
            + " ".join(f"WHEN '{n}' THEN {i}" for i, n in CHANNELS)
            + " END"
        )
        self.copy(
            f"""SELECT order_id, product_id, client_id, CAST({status_id} AS INTEGER) AS status_id,
                       CAST({channel_id} AS INTEGER) AS channel_id, product_ccf AS units,
                       product_price AS unit_price, total_price, total_volume, {lineage} FROM r""",
            f"model/fact_orders/{part}",
        )
        stamp = f"TIMESTAMPTZ '{INGESTED_AT}+00' AS ingested_at, 'duckdb' AS run_id"
        self.copy(
            f"""SELECT client_id, arg_max(client_name, ln) AS client_name, {stamp}
                FROM r GROUP BY client_id""",
            f"model/dim_clients/{part}",
        )
        self.copy(
            f"""SELECT product_id, arg_max(product_description, ln) AS product_description,
                       arg_max(product_price, ln) AS product_price,
                       arg_max(product_volume, ln) AS product_volume, {stamp}
                FROM r GROUP BY product_id""",
            f"model/dim_products/{part}",
        )
        values = ", ".join(f"({i}, '{n}')" for i, n in STATUSES)
        self.copy(f"SELECT * FROM (VALUES {values}) t(status_id, status)", f"model/dim_status/{part}")
        values = ", ".join(f"({i}, '{n}')" for i, n in CHANNELS)
        self.copy(f"SELECT * FROM (VALUES {values}) t(channel_id, channel)", f"model/dim_channels/{part}")

    def write_aggregates(self) -> None:
        for name, key in (("by_client", "client_id"), ("by_product", "product_id"), ("by_status", "status")):
            self.copy(
                f"""SELECT {key}, count(*) AS orders, sum(product_ccf) AS units,
                           sum(total_price) AS total_price FROM r GROUP BY {key}""",
                f"aggregates/{name}.parquet",
            )

    def emit(self, ph: Phases) -> None:
        by_reason = dict(self.sql("SELECT reason, count(*) FROM rejected GROUP BY reason").fetchall())
        kept, sum_price, sum_volume = self.sql(
            "SELECT count(*), sum(total_price), sum(total_volume) FROM r"
        ).fetchone()
        emit(
            rows_read=self.rows_read,
            kept=kept,
            exact_duplicates=self.scalar("SELECT count(*) FROM dropped WHERE verdict = 'duplicate'"),
            rejected=sum(by_reason.values()),
            sum_total_price=sum_price,
            sum_total_volume=sum_volume,
            by_status=dict(self.sql("SELECT status, count(*) FROM r GROUP BY status").fetchall()),
            by_reason=by_reason,
            blank_lines=self.blank_lines,
            phases=ph,
        )


def main() -> None:
    csv, outdir, threads = usage(sys.argv, "peer_duckdb.py")
    job = Job(csv, outdir, threads)
    ph = Phases()
    job.load()
    ph.mark("read_lines")
    job.odd_lines()
    ph.mark("records")
    job.parse()
    ph.mark("parse_validate")
    job.dedup()
    ph.mark("dedup")
    job.write_quarantine()
    job.write_tables()
    ph.mark("write")
    job.write_aggregates()
    ph.mark("aggregates")
    job.emit(ph)


if __name__ == "__main__":
    main()
