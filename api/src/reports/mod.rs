//! Report definitions: SQL text ([`sql`]) plus the names of its bound parameters.

pub mod dialect;
#[macro_use]
pub mod sql;
pub mod current;

/// A bound parameter value. Only these two types exist, so a backend can always bind them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// An id, a count, an offset or a limit.
    Int(i64),
    /// A date (`YYYY-MM-DD`), a run id, a status or reason code; `''` for "any".
    Text(String),
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(v.to_string())
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(v)
    }
}

/// A report: a name (logs, JSON `report` field), its SQL, and what `$1`, `$2`… mean.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    /// The report's name in logs and in the JSON envelope's `report` field. A report and its
    /// current-state form share it.
    pub name: &'static str,
    /// The SQL, with numbered placeholders (`$1`, `$2`…).
    pub sql: &'static str,
    /// What each placeholder is: `params[n - 1]` names `$n`. Every placeholder is declared and
    /// every declared parameter used (a unit test holds this).
    pub params: &'static [&'static str],
    /// The same report read from the current state and its marts, for a request over every
    /// date (its parameters are these without the leading `from` and `to`).
    pub current: Option<&'static Report>,
}

impl Report {
    /// The report and parameters to run for `dates` and the parameters after them: the
    /// current-state form when the request spans every date and the backend has one.
    pub fn bind(
        &'static self,
        dates: &crate::params::DateRange,
        rest: Vec<Param>,
        current_state: bool,
    ) -> (&'static Report, Vec<Param>) {
        match self.current {
            Some(current) if current_state && dates.is_everything() => (current, rest),
            _ => {
                let mut bound = vec![
                    Param::from(dates.from.as_str()),
                    Param::from(dates.to.as_str()),
                ];
                bound.extend(rest);
                (self, bound)
            }
        }
    }
}

const fn current(name: &'static str, sql: &'static str, params: &'static [&'static str]) -> Report {
    Report {
        name,
        sql,
        params,
        current: None,
    }
}

const PAGE: &[&str] = &["offset", "limit"];
const CLIENT_ONLY: &[&str] = &["client_id"];
const CLIENT_PAGE: &[&str] = &["client_id", "offset", "limit"];

const DATES_PAGE: &[&str] = &["from", "to", "offset", "limit"];
const CLIENT: &[&str] = &["from", "to", "client_id"];

/// `/clients/{client_id}/orders`: the latest version of each of the client's order lines, by
/// order and product.
pub static CLIENT_ORDERS: Report = Report {
    name: "client_orders",
    sql: sql::CLIENT_ORDERS,
    params: &["from", "to", "client_id", "status", "offset", "limit"],
    current: Some(&current(
        "client_orders",
        current::CLIENT_ORDERS,
        &["client_id", "status", "offset", "limit"],
    )),
};
/// Whether a client has any order line in a committed run: tells "no such client" (404) from
/// an empty page.
pub static CLIENT_EXISTS: Report = Report {
    name: "client_exists",
    sql: sql::CLIENT_EXISTS,
    params: &["client_id"],
    current: None,
};
/// `/client-orders?resource=client_orders`: per client, its orders and the money it spent.
pub static LEGACY_CLIENT_TOTALS: Report = Report {
    name: "client_orders",
    sql: sql::LEGACY_CLIENT_TOTALS,
    params: &["from", "to", "client_id", "offset", "limit"],
    current: Some(&current(
        "client_orders",
        current::LEGACY_CLIENT_TOTALS,
        CLIENT_PAGE,
    )),
};
/// `/client-orders?resource=status_summary` without a client: order lines per status.
pub static LEGACY_STATUS_COUNTS: Report = Report {
    name: "status_summary",
    sql: sql::LEGACY_STATUS_COUNTS,
    params: &["from", "to"],
    current: Some(&current(
        "status_summary",
        current::LEGACY_STATUS_COUNTS,
        &[],
    )),
};
/// `/client-orders?resource=status_summary&client_id=…`: one client's order lines per status.
pub static CLIENT_STATUS_COUNTS: Report = Report {
    name: "status_summary",
    sql: sql::CLIENT_STATUS_COUNTS,
    params: CLIENT,
    current: Some(&current(
        "status_summary",
        current::CLIENT_STATUS_COUNTS,
        CLIENT_ONLY,
    )),
};
/// `/client-orders?resource=orders_by_client`: one client's totals per order.
pub static CLIENT_ORDER_TOTALS: Report = Report {
    name: "orders_by_client",
    sql: sql::CLIENT_ORDER_TOTALS,
    params: &["from", "to", "client_id", "offset", "limit"],
    current: Some(&current(
        "orders_by_client",
        current::CLIENT_ORDER_TOTALS,
        CLIENT_PAGE,
    )),
};
/// `/sales/by-product`: totals per product, best-selling first.
pub static SALES_BY_PRODUCT: Report = Report {
    name: "sales_by_product",
    sql: sql::SALES_BY_PRODUCT,
    params: DATES_PAGE,
    current: Some(&current(
        "sales_by_product",
        current::SALES_BY_PRODUCT,
        PAGE,
    )),
};
/// `/sales/by-status`: totals per order-line status, every status listed.
pub static SALES_BY_STATUS: Report = Report {
    name: "sales_by_status",
    sql: sql::SALES_BY_STATUS,
    params: DATES_PAGE,
    current: Some(&current("sales_by_status", current::SALES_BY_STATUS, PAGE)),
};
/// `/sales/by-channel`: totals per point-of-sale channel, every channel listed.
pub static SALES_BY_CHANNEL: Report = Report {
    name: "sales_by_channel",
    sql: sql::SALES_BY_CHANNEL,
    params: DATES_PAGE,
    current: Some(&current(
        "sales_by_channel",
        current::SALES_BY_CHANNEL,
        PAGE,
    )),
};
/// `/sales/by-day`: totals per `pa_date` and channel.
pub static SALES_BY_DAY: Report = Report {
    name: "sales_by_day",
    sql: sql::SALES_BY_DAY,
    params: DATES_PAGE,
    current: Some(&current("sales_by_day", current::SALES_BY_DAY, PAGE)),
};
/// `/runs`: runs (succeeded and failed) with their counts, newest first.
pub static RUNS: Report = Report {
    name: "runs",
    sql: sql::RUNS,
    params: &["from", "to", "status", "offset", "limit"],
    current: None,
};
/// `/runs/{run_id}`: every column of one run; no row when there is no such run.
pub static RUN: Report = Report {
    name: "run",
    sql: sql::RUN,
    params: &["run_id"],
    current: None,
};
/// Whether the current state and the marts hold every committed run (no parameters).
pub static EVERY_RUN_FOLDED: Report = Report {
    name: "every_run_folded",
    sql: sql::EVERY_RUN_FOLDED,
    params: &[],
    current: None,
};
/// `/runs/{run_id}/quarantine`: a committed run's quarantined rows, raw text cut at 1024
/// characters.
pub static RUN_QUARANTINE: Report = Report {
    name: "run_quarantine",
    sql: sql::RUN_QUARANTINE,
    params: &["run_id", "reason", "offset", "limit"],
    current: None,
};
/// `/runs/{run_id}/quarantine/{source_line}`: the quarantined rows of one source line, with
/// their whole raw text.
pub static RUN_QUARANTINE_LINE: Report = Report {
    name: "run_quarantine_line",
    sql: sql::RUN_QUARANTINE_LINE,
    params: &["run_id", "source_line"],
    current: None,
};

/// Orderings of the totals per client. Each is its own fixed SQL text: an ORDER BY column
/// cannot be a bound parameter, and request text never becomes SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSort {
    /// By money spent (`sales`): the default.
    Sales,
    /// By distinct orders.
    Orders,
    /// By units bought (the sum of `product_ccf`).
    Units,
    /// By volume bought.
    Volume,
    /// By client id.
    ClientId,
}

impl ClientSort {
    /// The `sort` parameter's accepted values, in variant order.
    pub const NAMES: [&'static str; 5] = ["sales", "orders", "units", "volume", "client_id"];

    /// The ordering a `sort` value names (exact, lower case); `None` for any other text.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sales" => ClientSort::Sales,
            "orders" => ClientSort::Orders,
            "units" => ClientSort::Units,
            "volume" => ClientSort::Volume,
            "client_id" => ClientSort::ClientId,
            _ => return None,
        })
    }

    /// The totals-per-client report with this ordering (ties always by ascending client id).
    pub fn report(self, descending: bool) -> &'static Report {
        use ClientSort::*;
        match (self, descending) {
            (Sales, true) => &CLIENT_TOTALS[0],
            (Sales, false) => &CLIENT_TOTALS[1],
            (Orders, true) => &CLIENT_TOTALS[2],
            (Orders, false) => &CLIENT_TOTALS[3],
            (Units, true) => &CLIENT_TOTALS[4],
            (Units, false) => &CLIENT_TOTALS[5],
            (Volume, true) => &CLIENT_TOTALS[6],
            (Volume, false) => &CLIENT_TOTALS[7],
            (ClientId, true) => &CLIENT_TOTALS[8],
            (ClientId, false) => &CLIENT_TOTALS[9],
        }
    }
}

const fn client_totals(sql: &'static str, current: &'static Report) -> Report {
    Report {
        name: "client_totals",
        sql,
        params: DATES_PAGE,
        current: Some(current),
    }
}

static CLIENT_TOTALS_CURRENT: [Report; 10] = [
    current("client_totals", current::CLIENT_TOTALS_SALES_DESC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_SALES_ASC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_ORDERS_DESC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_ORDERS_ASC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_UNITS_DESC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_UNITS_ASC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_VOLUME_DESC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_VOLUME_ASC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_ID_DESC, PAGE),
    current("client_totals", current::CLIENT_TOTALS_ID_ASC, PAGE),
];

/// `/clients`: totals per client, one report per [`ClientSort`] and direction (descending,
/// then ascending); pick one with [`ClientSort::report`].
pub static CLIENT_TOTALS: [Report; 10] = [
    client_totals(sql::CLIENT_TOTALS_SALES_DESC, &CLIENT_TOTALS_CURRENT[0]),
    client_totals(sql::CLIENT_TOTALS_SALES_ASC, &CLIENT_TOTALS_CURRENT[1]),
    client_totals(sql::CLIENT_TOTALS_ORDERS_DESC, &CLIENT_TOTALS_CURRENT[2]),
    client_totals(sql::CLIENT_TOTALS_ORDERS_ASC, &CLIENT_TOTALS_CURRENT[3]),
    client_totals(sql::CLIENT_TOTALS_UNITS_DESC, &CLIENT_TOTALS_CURRENT[4]),
    client_totals(sql::CLIENT_TOTALS_UNITS_ASC, &CLIENT_TOTALS_CURRENT[5]),
    client_totals(sql::CLIENT_TOTALS_VOLUME_DESC, &CLIENT_TOTALS_CURRENT[6]),
    client_totals(sql::CLIENT_TOTALS_VOLUME_ASC, &CLIENT_TOTALS_CURRENT[7]),
    client_totals(sql::CLIENT_TOTALS_ID_DESC, &CLIENT_TOTALS_CURRENT[8]),
    client_totals(sql::CLIENT_TOTALS_ID_ASC, &CLIENT_TOTALS_CURRENT[9]),
];

/// Every report, for tests and tools.
pub fn all() -> Vec<&'static Report> {
    let mut v: Vec<&'static Report> = vec![
        &CLIENT_ORDERS,
        &CLIENT_EXISTS,
        &LEGACY_CLIENT_TOTALS,
        &LEGACY_STATUS_COUNTS,
        &CLIENT_STATUS_COUNTS,
        &CLIENT_ORDER_TOTALS,
        &SALES_BY_PRODUCT,
        &SALES_BY_STATUS,
        &SALES_BY_CHANNEL,
        &SALES_BY_DAY,
        &RUNS,
        &RUN,
        &RUN_QUARANTINE,
        &RUN_QUARANTINE_LINE,
        &EVERY_RUN_FOLDED,
    ];
    v.extend(CLIENT_TOTALS.iter());
    let current: Vec<&'static Report> = v.iter().filter_map(|r| r.current).collect();
    v.extend(current);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_declared_and_every_declared_parameter_used() {
        for report in all() {
            let used = dialect::placeholders(report.sql);
            let max = used.iter().copied().max().unwrap_or(0);
            assert_eq!(max, report.params.len(), "{}: {:?}", report.name, used);
            for n in 1..=max {
                assert!(used.contains(&n), "{}: ${n} unused", report.name);
            }
        }
    }

    #[test]
    fn sort_names_map_to_distinct_sql() {
        let mut seen = std::collections::HashSet::new();
        for name in ClientSort::NAMES {
            let sort = ClientSort::from_name(name).unwrap();
            assert!(seen.insert(sort.report(true).sql));
            assert!(seen.insert(sort.report(false).sql));
        }
        assert!(ClientSort::from_name("sales; DROP TABLE runs").is_none());
    }

    #[test]
    fn reports_name_only_known_tables() {
        let known = crate::tables::table_names();
        for report in all() {
            let lower = report.sql.to_ascii_lowercase();
            for word in lower.split_whitespace().collect::<Vec<_>>().windows(2) {
                if matches!(word[0], "from" | "join") && !word[1].starts_with('(') {
                    let name = word[1].trim_end_matches([',', ')']);
                    let cte = lower.contains(&format!("{name} as ("));
                    assert!(
                        cte || known.contains(&name),
                        "{}: unknown table {name}",
                        report.name
                    );
                }
            }
        }
    }
}
