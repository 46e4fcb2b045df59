//! Every route over HTTP, numbers checked against the reference.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    DAY1, DAY2, GHOST_CLIENT, Line, Measures, NEW_CLIENT, NEW_CLIENT_NAME, all_pages, get,
    get_json, lake, money, server,
};

fn by_key<'a>(rows: &'a [Value], key: &str) -> BTreeMap<String, &'a Value> {
    rows.iter().map(|r| (r[key].to_string(), r)).collect()
}

/// The expected row of a client order line, as JSON.
fn line_json(l: &Line) -> Value {
    serde_json::json!({
        "order_id": l.order_id,
        "product_id": l.product_id,
        "product_description": l.description,
        "product_price": money(l.price),
        "product_ccf": l.units,
        "product_volume": money(l.volume),
        "total_price": money(l.total_price),
        "total_volume": money(l.total_volume),
        "point_of_sale_channel": l.channel,
        "status": l.status,
        "client_id": l.client_id,
        "client_name": l.client_name,
        "pa_date": l.pa_date,
        "ingested_at": format!("{}T{}:00:00.000Z", l.pa_date, if l.pa_date == DAY1 { "10" } else { "11" }),
        "run_id": l.run_id,
    })
}

#[test]
fn client_orders_are_the_latest_version_of_each_line_in_stable_pages() {
    let lake = lake();
    let client = lake.client;
    let expected: Vec<Value> = lake
        .all_latest()
        .values()
        .filter(|l| l.client_id == client)
        .map(line_json)
        .collect();
    assert!(expected.len() >= 20);
    // Run 2 re-ingested every line of this client: each line shows run 2's version.
    assert!(expected.iter().all(|r| r["pa_date"] == DAY2));
    let rows = all_pages(server(), &format!("/clients/{client}/orders"), 7);
    assert_eq!(rows, expected);

    // One page: the envelope, typed columns.
    let body = get_json(server(), &format!("/clients/{client}/orders?limit=5"));
    assert_eq!(body["report"], "client_orders");
    assert_eq!(body["page"]["next_offset"], 5);
    assert_eq!(body["page"]["returned"], 5);
    let types: BTreeMap<String, String> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(types["order_id"], "integer");
    assert_eq!(types["total_price"], "decimal");
    assert_eq!(types["ingested_at"], "timestamp");
    assert_eq!(types["status"], "text");
    assert!(
        body["rows"][0]["order_id"].is_i64(),
        "integers are JSON numbers"
    );
    assert!(
        body["rows"][0]["total_price"].is_string(),
        "money is an exact string"
    );

    // As of day 1 (only day-1 partitions read): run 1's versions.
    let as_of_day1: Vec<Value> = lake
        .latest(DAY1, DAY1)
        .values()
        .filter(|l| l.client_id == client)
        .map(line_json)
        .collect();
    assert_eq!(
        all_pages(
            server(),
            &format!("/clients/{client}/orders?to={DAY1}"),
            1000
        ),
        as_of_day1
    );
    assert_ne!(as_of_day1, expected, "run 2 changed this client's lines");

    // Status filter applies to the latest version.
    let delivered: Vec<&Value> = expected
        .iter()
        .filter(|r| r["status"] == "delivered")
        .collect();
    let rows = all_pages(
        server(),
        &format!("/clients/{client}/orders?status=DELIVERED"),
        1000,
    );
    assert_eq!(rows.iter().collect::<Vec<_>>(), delivered);
}

#[test]
fn unknown_client_is_404_and_a_known_client_with_no_match_is_an_empty_page() {
    let r = get(server(), "/clients/123456789/orders");
    assert_eq!(r.status, 404, "{}", r.text());
    let err = r.json();
    assert_eq!(err["error"]["code"], "not_found");
    assert_eq!(err["error"]["retryable"], false);
    // The client of the uncommitted run does not exist either.
    assert_eq!(
        get(server(), &format!("/clients/{GHOST_CLIENT}/orders")).status,
        404
    );
    // The new client exists only from day 2: an empty page before, not a 404.
    let body = get_json(server(), &format!("/clients/{NEW_CLIENT}/orders?to={DAY1}"));
    assert_eq!(body["rows"], serde_json::json!([]));
    assert_eq!(body["page"]["next_offset"], Value::Null);
    let body = get_json(server(), &format!("/clients/{NEW_CLIENT}/orders"));
    let expected: Vec<Value> = lake()
        .all_latest()
        .values()
        .filter(|l| l.client_id == NEW_CLIENT)
        .map(line_json)
        .collect();
    assert_eq!(
        expected.len(),
        6,
        "five new lines and one moved from another client"
    );
    assert_eq!(body["rows"], Value::Array(expected));
    assert_eq!(body["rows"][0]["client_name"], NEW_CLIENT_NAME);
}

#[test]
fn totals_per_client_with_top_product_sorted_and_paged() {
    let lake = lake();
    let latest = lake.all_latest();
    let mut per_client: BTreeMap<i64, (Measures, BTreeMap<i64, i128>, String)> = BTreeMap::new();
    for l in latest.values() {
        let e = per_client.entry(l.client_id).or_default();
        e.0.add(l);
        *e.1.entry(l.product_id).or_default() += l.total_price;
        e.2 = l.client_name.clone();
    }
    let descriptions: BTreeMap<i64, &str> = latest
        .values()
        .map(|l| (l.product_id, l.description.as_str()))
        .collect();
    let rows = all_pages(server(), "/clients", 97);
    assert_eq!(rows.len(), per_client.len());
    // Default: sales descending, ties by client id.
    let mut order: Vec<(i128, i64)> = per_client.iter().map(|(c, e)| (-e.0.sales, *c)).collect();
    order.sort();
    let got: Vec<i64> = rows
        .iter()
        .map(|r| r["client_id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, order.iter().map(|o| o.1).collect::<Vec<_>>());
    for row in &rows {
        let id = row["client_id"].as_i64().unwrap();
        let (m, products, name) = &per_client[&id];
        m.check(row, &format!("client {id}"));
        assert_eq!(row["client_name"], name.as_str());
        let (top, sales) = products
            .iter()
            .map(|(p, s)| (*p, *s))
            .min_by_key(|(p, s)| (-s, *p))
            .unwrap();
        assert_eq!(row["top_product_id"], top, "client {id}");
        assert_eq!(row["top_product_sales"], money(sales));
        assert_eq!(row["top_product_description"], descriptions[&top]);
    }
    assert!(!per_client.contains_key(&GHOST_CLIENT));

    // Other orders: by units ascending, by client id (ascending by default).
    let rows = all_pages(server(), "/clients?sort=units&order=asc", 1000);
    let mut order: Vec<(i64, i64)> = per_client.iter().map(|(c, e)| (e.0.units, *c)).collect();
    order.sort();
    let got: Vec<i64> = rows
        .iter()
        .map(|r| r["client_id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, order.iter().map(|o| o.1).collect::<Vec<_>>());
    let rows = all_pages(server(), "/clients?sort=client_id", 1000);
    let got: Vec<i64> = rows
        .iter()
        .map(|r| r["client_id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, per_client.keys().copied().collect::<Vec<_>>());
}

#[test]
fn sales_per_product_status_channel_and_day() {
    let lake = lake();
    let latest = lake.all_latest();

    let mut products: BTreeMap<i64, Measures> = BTreeMap::new();
    let mut statuses: BTreeMap<&str, Measures> = BTreeMap::new();
    let mut channels: BTreeMap<&str, Measures> = BTreeMap::new();
    let mut days: BTreeMap<(String, String), Measures> = BTreeMap::new();
    for l in latest.values() {
        products.entry(l.product_id).or_default().add(l);
        statuses.entry(&l.status).or_default().add(l);
        channels.entry(&l.channel).or_default().add(l);
        days.entry((l.pa_date.clone(), l.channel.clone()))
            .or_default()
            .add(l);
    }

    let rows = all_pages(server(), "/sales/by-product", 9);
    assert_eq!(rows.len(), products.len());
    let mut order: Vec<(i128, i64)> = products.iter().map(|(p, m)| (-m.sales, *p)).collect();
    order.sort();
    for (row, (_, product)) in rows.iter().zip(&order) {
        assert_eq!(row["product_id"], *product);
        let m = &products[product];
        assert_eq!(
            row["orders"], m.order_lines,
            "orders of a product = its lines"
        );
        assert_eq!(row["units"], m.units);
        assert_eq!(row["sales"], money(m.sales));
        assert_eq!(row["volume"], money(m.volume));
    }

    let body = get_json(server(), "/sales/by-status");
    let rows = body["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["created", "delivered", "broken"],
        "dim_status order"
    );
    for row in rows {
        let m = statuses[row["status"].as_str().unwrap()].clone();
        m.check(row, "status");
    }

    let body = get_json(server(), "/sales/by-channel");
    let rows = body["rows"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Retail", "Online", "B2B"]);
    for row in rows {
        channels[row["channel"].as_str().unwrap()].check(row, "channel");
    }

    let rows = all_pages(server(), "/sales/by-day", 2);
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["pa_date"].as_str().unwrap().into(),
                r["channel"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, days.keys().cloned().collect::<Vec<_>>());
    for row in &rows {
        let key = (
            row["pa_date"].as_str().unwrap().to_string(),
            row["channel"].as_str().unwrap().to_string(),
        );
        days[&key].check(row, "day");
    }
    // A date range prunes to its partitions.
    let rows = all_pages(
        server(),
        &format!("/sales/by-day?from={DAY2}&to={DAY2}"),
        100,
    );
    assert!(rows.iter().all(|r| r["pa_date"] == DAY2) && !rows.is_empty());
}

#[test]
fn runs_list_details_and_quarantine() {
    let lake = lake();
    let rows = all_pages(server(), "/runs", 2);
    // Two committed runs and one failed; newest first. The uncommitted run has no manifest.
    assert_eq!(rows.len(), 3, "{rows:?}");
    let runs = by_key(&rows, "run_id");
    assert!(!runs.contains_key(&format!("\"{}\"", lake.ghost_run_id)));
    for run in &lake.runs {
        let row = runs[&format!("\"{}\"", run.run_id)];
        let r = &run.reference;
        assert_eq!(row["status"], "succeeded");
        assert_eq!(row["rows_read"], r.rows_read);
        assert_eq!(row["rows_written"], r.kept.len() as u64);
        assert_eq!(row["exact_duplicates"], r.exact_duplicates);
        assert_eq!(row["quarantined"], r.quarantine.len() as u64);
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        for (_, reason, _) in &r.quarantine {
            *reasons.entry(reason.clone()).or_default() += 1;
        }
        assert_eq!(
            row["quarantined_by_reason"],
            serde_json::to_value(&reasons).unwrap()
        );
        assert_eq!(row["nothing_lost"], true);
        assert_eq!(row["pa_date"], run.pa_date.as_str());
        // Each run ended with its fold into the current state.
        assert!(row["folded_at"].is_string(), "{row}");
    }
    let failed = runs[&format!("\"{}\"", lake.failed_run_id)];
    assert_eq!(failed["status"], "failed");
    assert!(failed["folded_at"].is_null(), "nothing to fold: {failed}");
    assert_eq!(failed["error_code"], "missing_columns");
    assert_eq!(
        get_json(server(), "/runs?status=failed")["rows"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let recent = get_json(server(), &format!("/runs?from={DAY1}&to={DAY1}"));
    assert_eq!(recent["rows"][0]["run_id"], lake.runs[0].run_id.as_str());

    // One run's details.
    let run1 = &lake.runs[0];
    let detail = get_json(server(), &format!("/runs/{}", run1.run_id));
    assert_eq!(detail["run_id"], run1.run_id.as_str());
    assert_eq!(detail["extra_columns"].as_array().unwrap().len(), 2);
    assert_eq!(detail["source_gzip"], false);
    assert!(detail["threads"].as_i64().unwrap() >= 1);
    assert_eq!(get(server(), "/runs/ffffffffffffffffffff").status, 404);
    assert_eq!(
        get(server(), &format!("/runs/{}", lake.ghost_run_id)).status,
        404
    );

    // Quarantined rows of run 1, by line, every page.
    let rows = all_pages(server(), &format!("/runs/{}/quarantine", run1.run_id), 50);
    let mut expected = run1.reference.quarantine.clone();
    expected.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    assert_eq!(rows.len(), expected.len());
    for (row, (line, reason, kept)) in rows.iter().zip(&expected) {
        assert_eq!(row["source_line"], *line);
        assert_eq!(row["reason"], reason.as_str());
        assert_eq!(row["kept_line"], serde_json::to_value(kept).unwrap());
    }
    let conflicts = all_pages(
        server(),
        &format!("/runs/{}/quarantine?reason=key_conflict", run1.run_id),
        1000,
    );
    assert_eq!(
        conflicts.len(),
        expected.iter().filter(|q| q.1 == "key_conflict").count()
    );
    assert_eq!(
        get(server(), "/runs/ffffffffffffffffffff/quarantine").status,
        404
    );

    // Run 2's long line: cut at 1024 characters in the list, whole on the line's route.
    let run2 = &lake.runs[1];
    let rows = all_pages(server(), &format!("/runs/{}/quarantine", run2.run_id), 1000);
    let long: Vec<&Value> = rows
        .iter()
        .filter(|r| r["raw_text_truncated"] == true)
        .collect();
    assert_eq!(long.len(), 1, "{rows:?}");
    let cut = long[0]["raw_text"].as_str().unwrap();
    assert_eq!(cut.chars().count(), 1024);
    assert!(
        rows.iter()
            .all(|r| r["raw_text"].as_str().unwrap().len() <= 1024)
    );
    let line = long[0]["source_line"].as_i64().unwrap();
    let whole = get_json(
        server(),
        &format!("/runs/{}/quarantine/{line}", run2.run_id),
    );
    let whole = whole.as_array().expect("a JSON array");
    assert_eq!(whole.len(), 1);
    let text = whole[0]["raw_text"].as_str().unwrap();
    assert!(text.starts_with(cut) && text.contains(&"x".repeat(super::LONG_FIELD)));
    assert_eq!(whole[0]["raw_text_truncated"], false);
    assert_eq!(whole[0]["reason"], long[0]["reason"]);
    // A line with nothing quarantined, and one that is not a line number.
    let r = get(server(), &format!("/runs/{}/quarantine/2", run2.run_id));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = get(server(), &format!("/runs/{}/quarantine/0x10", run2.run_id));
    assert_eq!(r.status, 400);
}

#[test]
fn csv_format_has_a_header_the_same_values_and_the_next_offset() {
    let client = lake().client;
    let json = get_json(server(), &format!("/clients/{client}/orders?limit=3"));
    let r = get(
        server(),
        &format!("/clients/{client}/orders?limit=3&format=csv"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(r.header("x-next-offset"), Some("3"));
    let mut reader = csv::Reader::from_reader(r.body.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let columns: Vec<String> = json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(header, columns);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
    for (rec, row) in records.iter().zip(json["rows"].as_array().unwrap()) {
        for (i, name) in columns.iter().enumerate() {
            let want = match &row[name] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(rec[i], want, "{name}");
        }
    }
    // Runs as CSV: the map column is compact JSON in one field, the JSON route's value.
    let runs = get_json(server(), "/runs");
    let r = get(server(), "/runs?format=csv");
    let mut reader = csv::Reader::from_reader(r.body.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let (id_at, map_at) = (
        header.iter().position(|h| h == "run_id").expect("run_id"),
        header
            .iter()
            .position(|h| h == "quarantined_by_reason")
            .expect("quarantined_by_reason"),
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let rows = runs["rows"].as_array().unwrap();
    assert_eq!(records.len(), rows.len());
    assert!(!rows.is_empty());
    for (rec, row) in records.iter().zip(rows) {
        assert_eq!(rec[id_at], row["run_id"].as_str().unwrap().to_string());
        let field: Value = serde_json::from_str(&rec[map_at]).expect("one JSON field");
        assert_eq!(field, row["quarantined_by_reason"], "{}", &rec[map_at]);
        assert!(
            !rec[map_at].contains(": "),
            "compact JSON: {}",
            &rec[map_at]
        );
    }
    let r = get(
        server(),
        &format!("/client-orders?resource=status_summary&client_id={client}&format=csv"),
    );
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("status,count\n"), "{}", r.text());
}

#[test]
fn the_earlier_public_api_keeps_its_shape() {
    let lake = lake();
    let client = lake.client;
    let latest: Vec<Line> = lake.all_latest().into_values().collect();
    let lines: Vec<&Line> = latest.iter().filter(|l| l.client_id == client).collect();

    // client_orders: one row per client, its orders and the money it spent, by client id.
    let mut per_client: BTreeMap<i64, Measures> = BTreeMap::new();
    for l in &latest {
        per_client.entry(l.client_id).or_default().add(l);
    }
    let clients: Vec<Value> = per_client
        .iter()
        .map(|(id, m)| {
            serde_json::json!({
                "client_id": id,
                "total_orders": m.orders.len(),
                "total_spent": money(m.sales),
            })
        })
        .collect();
    assert!(clients.len() > 5);
    let all = get_json(server(), "/client-orders?resource=client_orders");
    assert_eq!(all.as_array().expect("a bare JSON array"), &clients);
    // Pages of `limit` rows; the header gives the next page's offset, the last has none.
    let mut paged: Vec<Value> = Vec::new();
    let mut offset = Some("0".to_string());
    while let Some(at) = offset {
        let r = get(
            server(),
            &format!("/client-orders?resource=client_orders&limit=2&offset={at}"),
        );
        assert_eq!(r.status, 200);
        let rows = r.json().as_array().unwrap().clone();
        assert!(rows.len() <= 2);
        paged.extend(rows);
        offset = r.header("x-next-offset").map(str::to_string);
    }
    assert_eq!(paged, clients);
    // With client_id: that client's row only.
    let one = get_json(
        server(),
        &format!("/client-orders?resource=client_orders&client_id={client}"),
    );
    let mine: Vec<&Value> = clients
        .iter()
        .filter(|c| c["client_id"] == client)
        .collect();
    assert_eq!(one.as_array().unwrap().iter().collect::<Vec<_>>(), mine);

    // status_summary: one row per status, its count of order lines; of one client with client_id.
    for (target, of) in [
        ("/client-orders?resource=status_summary".to_string(), None),
        (
            format!("/client-orders?resource=status_summary&client_id={client}"),
            Some(client),
        ),
    ] {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for l in latest
            .iter()
            .filter(|l| of.is_none_or(|c| l.client_id == c))
        {
            *counts.entry(&l.status).or_default() += 1;
        }
        let want: Vec<Value> = counts
            .iter()
            .map(|(status, n)| serde_json::json!({"status": status, "count": n}))
            .collect();
        assert_eq!(get_json(server(), &target), Value::Array(want), "{target}");
    }

    // orders_by_client: one row per order of the client.
    let per_order = get_json(
        server(),
        &format!("/client-orders?resource=orders_by_client&client_id={client}"),
    );
    let mut orders: BTreeMap<i64, Measures> = BTreeMap::new();
    for l in &lines {
        orders.entry(l.order_id).or_default().add(l);
    }
    let per_order = per_order.as_array().unwrap();
    assert_eq!(per_order.len(), orders.len());
    for (row, (order, m)) in per_order.iter().zip(&orders) {
        assert_eq!(row["order_id"], *order);
        assert_eq!(row["order_lines"], m.order_lines);
        assert_eq!(row["units"], m.units);
        assert_eq!(row["sales"], money(m.sales));
    }
    let r = get(
        server(),
        &format!("/client-orders?resource=orders_by_client&client_id={client}&limit=1"),
    );
    assert_eq!(r.json(), serde_json::json!([per_order[0]]));
    assert_eq!(r.header("x-next-offset"), Some("1"));

    // An unknown client: an empty list, as before (not a 404).
    for resource in ["client_orders", "status_summary", "orders_by_client"] {
        let none = get_json(
            server(),
            &format!("/client-orders?resource={resource}&client_id=123456789"),
        );
        assert_eq!(none, serde_json::json!([]), "{resource}");
    }
}

#[test]
fn uncommitted_rows_are_invisible_everywhere() {
    let lake = lake();
    // The ghost run's files are in the lake...
    let files = crate::common::visible_data(&lake.root);
    assert!(
        files.iter().any(|f| f.contains(&lake.ghost_run_id)),
        "{files:?}"
    );
    // ...but no report counts them: totals equal the committed lines exactly.
    let latest = lake.all_latest();
    let units: i64 = latest.values().map(|l| l.units).sum();
    let body = get_json(server(), "/sales/by-status");
    let got: i64 = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["units"].as_i64().unwrap())
        .sum();
    assert_eq!(got, units);
    let legacy = get_json(
        server(),
        &format!("/client-orders?resource=client_orders&client_id={GHOST_CLIENT}"),
    );
    assert_eq!(legacy, serde_json::json!([]));
}

#[test]
fn health_openapi_unknown_routes_and_methods() {
    let health = get_json(server(), "/healthz");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["backend"], "embedded");

    let doc = get_json(server(), "/openapi.json");
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/clients/{client_id}/orders",
        "/sales/by-product",
        "/runs/{run_id}/quarantine",
        "/client-orders",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }

    let r = get(server(), "/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
    let r = super::request(
        server(),
        "POST",
        "/sales/by-status",
        &[("content-length", "0")],
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"]["code"], "method_not_allowed");

    let page = get(server(), "/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(get(server(), "/assets/dashboard.js").status, 200);
    assert_eq!(get(server(), "/assets/../Cargo.toml").status, 404);
}

#[test]
fn an_api_key_guards_data_routes_but_not_the_page_or_health() {
    let addr = super::spawn(duff_api::router(super::embedded(), Some("s3cret".into())));
    let r = get(&addr, "/sales/by-status");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "unauthorized");
    let r = super::request(&addr, "GET", "/sales/by-status", &[("x-api-key", "wrong")]);
    assert_eq!(r.status, 401);
    let r = super::request(&addr, "GET", "/sales/by-status", &[("x-api-key", "s3cret")]);
    assert_eq!(r.status, 200);
    assert_eq!(get(&addr, "/healthz").status, 200);
    assert_eq!(get(&addr, "/").status, 200);
    assert_eq!(get(&addr, "/openapi.json").status, 200);
}

/// Sends a GET with the given `Host` header; returns the status and the body.
fn get_for_host(addr: &str, host: &str, target: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw)
}

#[test]
fn a_loopback_server_answers_requests_for_localhost_only() {
    let addr = super::spawn(duff_api::loopback_only(duff_api::router(
        super::embedded(),
        None,
    )));
    let port = addr.rsplit(':').next().unwrap();
    for host in [
        addr.clone(),
        format!("localhost:{port}"),
        "LOCALHOST".to_string(),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(get_for_host(&addr, &host, "/healthz").0, 200, "{host}");
    }
    // A page on another site whose DNS name points at 127.0.0.1 (DNS rebinding).
    for host in [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.evil.example",
        "",
    ] {
        let (status, raw) = get_for_host(&addr, host, "/sales/by-status");
        assert_eq!(status, 421, "{host:?}: {raw}");
        assert!(raw.contains("misdirected_host"), "{raw}");
    }
}

#[test]
fn duff_serve_serves_the_lake_with_a_key() {
    use std::io::BufRead;
    let lake = lake();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_duff"));
    cmd.args(["serve", "--lake"])
        .arg(&lake.root)
        .args(["--addr", "127.0.0.1:0"])
        .env("DUFF_API_KEY", "k3y");
    let (mut child, addr, _) = super::serving(cmd);
    let unauthorized = get(&addr, "/sales/by-channel").status;
    let ok = super::request(&addr, "GET", "/sales/by-channel", &[("x-api-key", "k3y")]);
    let rebound = get_for_host(&addr, "evil.example", "/healthz").0;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(rebound, 421, "on loopback, only requests for localhost");
    assert_eq!(unauthorized, 401);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["rows"].as_array().unwrap().len(), 3);

    // The key from a file; on a non-loopback address without a key, a loud warning.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "f1le-k3y\n").unwrap();
    for (extra, key) in [
        (
            vec!["--api-key-file", key_file.to_str().unwrap()],
            Some("f1le-k3y"),
        ),
        (vec![], None),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_duff"))
            .args(["serve", "--lake"])
            .arg(&lake.root)
            .args(["--addr", "0.0.0.0:0"])
            .args(&extra)
            .env_remove("DUFF_API_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .to_string();
        let addr = format!("127.0.0.1:{port}");
        let guarded = get(&addr, "/sales/by-channel").status;
        let with_key = key
            .map(|k| super::request(&addr, "GET", "/sales/by-channel", &[("x-api-key", k)]).status);
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match key {
            Some(_) => {
                assert_eq!((guarded, with_key), (401, Some(200)));
                assert!(!stderr.contains("WARNING"), "{stderr}");
            }
            None => {
                assert_eq!(guarded, 200);
                assert!(stderr.contains("WARNING: serving on 0.0.0.0"), "{stderr}");
            }
        }
    }

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_duff"))
        .args(["serve", "--lake", "/nonexistent/lake"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no lake at"));
}

#[test]
fn duff_serve_keeps_serving_when_its_stdout_is_closed() {
    let lake = lake();
    // A free port named up front: with `127.0.0.1:0` only the closed stdout would tell it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_duff"))
        .args(["serve", "--lake"])
        .arg(&lake.root)
        .args(["--addr", &addr])
        .env_remove("DUFF_API_KEY")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "duff serve stopped: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "duff serve never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let health = get(&addr, "/healthz").status;
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(still_running, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(health, 200);
}
