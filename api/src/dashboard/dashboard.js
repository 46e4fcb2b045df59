// Duff dashboard: plain JS and hand-drawn SVG, no libraries, no network beyond this API.
"use strict";

(function () {
  // Errors are shown on the page too, so a headless test can read them from the DOM.
  const errors = [];
  function recordError(message) {
    errors.push(String(message));
    const el = document.getElementById("console-errors");
    if (el) {
      el.textContent = errors.join("\n");
      el.hidden = false;
    }
  }
  window.addEventListener("error", (e) => recordError(e.message));
  window.addEventListener("unhandledrejection", (e) => recordError(e.reason));

  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#c8102e", "#f2a900", "#2f6db3", "#3a9d5d", "#8e44ad", "#6b7b8c"];
  const KEY_STORE = "duff-api-key";

  class AuthError extends Error {}

  // API Gateway gives up on a request after 29 s; the page says so a little earlier.
  const TIMEOUT_MS = 25000;

  // ---- data -------------------------------------------------------------------------------

  // `path` is relative to the page's <base>: "/" locally, "/<stage>/" behind API Gateway.
  async function api(path) {
    const headers = { Accept: "application/json" };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers["x-api-key"] = key;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    let response;
    try {
      response = await fetch(path, { headers, signal: abort.signal });
    } catch (err) {
      throw new Error(abort.signal.aborted
        ? `No answer from the API in ${TIMEOUT_MS / 1000} s: it may be busy; reload to try again.`
        : `The API cannot be reached (${err.message}).`);
    } finally {
      clearTimeout(timer);
    }
    // The server answers 401 for a missing or wrong key; API Gateway answers 403.
    if (response.status === 401 || response.status === 403) {
      document.getElementById("key-form").hidden = false;
      throw new AuthError(key ? "the API refused this key"
        : response.status === 403 ? "an API key is needed, or this API takes signed requests only"
        : "an API key is needed");
    }
    const json = (response.headers.get("content-type") || "").includes("json");
    const body = json ? await response.json().catch(() => ({})) : {};
    if (!response.ok) {
      const why = body.error ? body.error.message
        : response.status === 504 ? "the API took too long to answer"
        : `the API failed (${response.status} ${response.statusText})`;
      const err = new Error(why + (response.status >= 500 ? "; reload to try again." : ""));
      err.status = response.status;
      throw err;
    }
    return body;
  }

  // Money arrives as exact decimal strings; sums use BigInt in units of 10^-4.
  function toUnits(text) {
    const neg = text.startsWith("-");
    const [int, frac = ""] = (neg ? text.slice(1) : text).split(".");
    const units = BigInt(int + frac.padEnd(4, "0").slice(0, 4));
    return neg ? -units : units;
  }
  function fromUnits(units) {
    const neg = units < 0n;
    const digits = (neg ? -units : units).toString().padStart(5, "0");
    return (neg ? "-" : "") + digits.slice(0, -4) + "." + digits.slice(-4);
  }
  const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const count = new Intl.NumberFormat("en-US");
  const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  const fmtMoney = (text) => money.format(Number(text));
  const fmtCount = (n) => count.format(n);

  // ---- DOM helpers --------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function titled(node, text) {
    node.append(svg("title", {}, text));
    return node;
  }
  function fill(id, ...nodes) {
    const target = document.getElementById(id);
    target.replaceChildren(...nodes);
    return target;
  }
  function showError(id, err) {
    if (err instanceof AuthError) fill(id, el("p", { class: "muted" }, `Enter the API key above (${err.message}).`));
    else fill(id, el("p", { class: "error" }, String(err.message || err)));
  }
  function table(columns, rows) {
    const head = el("tr", {}, ...columns.map((c) => el("th", {}, c.label)));
    const body = rows.map((r) =>
      el("tr", {}, ...columns.map((c) => el("td", c.num ? { class: "num" } : {}, c.get(r)))));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
  }

  // ---- charts -------------------------------------------------------------------------------

  // Horizontal bars: items are {label, value (number), text (shown), title}.
  function barChart(name, items) {
    const rowH = 24, labelW = 210, width = 640, valueW = 110;
    const height = items.length * rowH + 8;
    const max = Math.max(1e-9, ...items.map((i) => i.value));
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, "data-chart": name, role: "img" });
    items.forEach((item, n) => {
      const y = 4 + n * rowH;
      const w = Math.max(1, ((width - labelW - valueW) * item.value) / max);
      root.append(svg("text", { x: labelW - 6, y: y + 16, class: "label", "text-anchor": "end" }, item.label));
      root.append(titled(svg("rect", {
        x: labelW, y: y + 3, width: w.toFixed(1), height: rowH - 6, class: "bar",
        fill: COLORS[0], "data-label": item.label, "data-value": item.raw ?? item.value,
      }), item.title));
      root.append(svg("text", { x: labelW + w + 6, y: y + 16, class: "value" }, item.text));
    });
    return root;
  }

  // A donut with a legend: items are {label, value, text}.
  function donut(name, items) {
    const size = 220, r = 90, inner = 55, c = size / 2;
    const total = items.reduce((s, i) => s + i.value, 0);
    const root = svg("svg", { viewBox: `0 0 ${size + 280} ${size}`, width: size + 280, height: size, "data-chart": name, role: "img" });
    let angle = -Math.PI / 2;
    items.forEach((item, n) => {
      const color = COLORS[n % COLORS.length];
      const share = total > 0 ? item.value / total : 0;
      if (share > 0) {
        const end = angle + share * 2 * Math.PI - (share === 1 ? 1e-6 : 0);
        const large = end - angle > Math.PI ? 1 : 0;
        const p = (rad, rr) => `${(c + rr * Math.cos(rad)).toFixed(2)} ${(c + rr * Math.sin(rad)).toFixed(2)}`;
        const d = `M ${p(angle, r)} A ${r} ${r} 0 ${large} 1 ${p(end, r)} L ${p(end, inner)} A ${inner} ${inner} 0 ${large} 0 ${p(angle, inner)} Z`;
        root.append(titled(svg("path", {
          d, fill: color, class: "slice", "data-label": item.label, "data-value": item.raw ?? item.value,
        }), `${item.label}: ${item.text}`));
        angle = end;
      }
      const ly = 30 + n * 26;
      root.append(svg("rect", { x: size + 20, y: ly - 12, width: 14, height: 14, fill: color }));
      root.append(svg("text", { x: size + 42, y: ly, class: "label" },
        `${item.label} — ${item.text} (${(share * 100).toFixed(1)}%)`));
    });
    return root;
  }

  // Stacked columns per day; series are channels. rows: {pa_date, channel, sales}.
  function stackedColumns(name, rows) {
    const days = [...new Set(rows.map((r) => r.pa_date))].sort();
    const channels = [...new Set(rows.map((r) => r.channel))].sort();
    const colW = 80, height = 240, left = 90, bottom = 40, top = 10;
    const width = Math.max(640, left + days.length * colW + 20);
    const totals = days.map((d) => rows.filter((r) => r.pa_date === d).reduce((s, r) => s + Number(r.sales), 0));
    const max = Math.max(1e-9, ...totals);
    const root = svg("svg", { viewBox: `0 0 ${width} ${height + 30}`, width, height: height + 30, "data-chart": name, role: "img" });
    root.append(svg("line", { x1: left, y1: top, x2: left, y2: height - bottom + top, class: "axis" }));
    root.append(svg("text", { x: left - 6, y: top + 10, class: "value", "text-anchor": "end" }, compact.format(max)));
    days.forEach((day, i) => {
      let y = height - bottom + top;
      const x = left + 6 + i * colW;
      channels.forEach((ch, k) => {
        const row = rows.find((r) => r.pa_date === day && r.channel === ch);
        if (!row) return;
        const h = ((height - bottom) * Number(row.sales)) / max;
        y -= h;
        root.append(titled(svg("rect", {
          x: x.toFixed(1), y: y.toFixed(1), width: (colW * 0.8).toFixed(1), height: Math.max(0.5, h).toFixed(1),
          fill: COLORS[k % COLORS.length], class: "bar", "data-label": `${day} ${ch}`, "data-value": row.sales,
        }), `${day} · ${ch}: ${fmtMoney(row.sales)}`));
      });
      root.append(svg("text", { x: x + colW * 0.4, y: height - bottom + top + 16, class: "label", "text-anchor": "middle" }, day));
    });
    channels.forEach((ch, k) => {
      const x = left + k * 110;
      root.append(svg("rect", { x, y: height + 6, width: 12, height: 12, fill: COLORS[k % COLORS.length] }));
      root.append(svg("text", { x: x + 16, y: height + 17, class: "label" }, ch));
    });
    return root;
  }

  // ---- sections -----------------------------------------------------------------------------

  async function loadProducts() {
    const body = await api("sales/by-product?limit=15");
    const items = body.rows.map((r) => ({
      label: r.product_description || `product ${r.product_id}`, value: Number(r.sales), raw: r.sales,
      text: fmtMoney(r.sales), title: `${r.product_id} ${r.product_description}: ${r.sales} (${fmtCount(r.units)} units)`,
    }));
    fill("chart-products", items.length ? barChart("products", items) : el("p", { class: "muted" }, "No sales yet."));
  }

  async function loadStatus() {
    const body = await api("sales/by-status");
    const items = body.rows.map((r) => ({ label: r.status, value: r.order_lines, raw: r.order_lines, text: `${fmtCount(r.order_lines)} lines` }));
    fill("chart-status", donut("status", items));
    let lines = 0, units = 0, sales = 0n, volume = 0n;
    for (const r of body.rows) {
      lines += r.order_lines; units += r.units; sales += toUnits(r.sales); volume += toUnits(r.volume);
    }
    const kpi = (label, value, name) => el("div", { class: "kpi", "data-kpi": name }, el("span", {}, label), el("strong", {}, value));
    fill("kpis", kpi("Order lines", fmtCount(lines), "order_lines"), kpi("Units", fmtCount(units), "units"),
      kpi("Sales", fmtMoney(fromUnits(sales)), "sales"), kpi("Volume (l)", fmtMoney(fromUnits(volume)), "volume"));
  }

  async function loadChannels() {
    const body = await api("sales/by-channel");
    const items = body.rows.map((r) => ({ label: r.channel, value: Number(r.sales), raw: r.sales, text: fmtMoney(r.sales), title: `${r.channel}: ${r.sales}` }));
    fill("chart-channels", barChart("channels", items));
  }

  async function loadDays() {
    const body = await api("sales/by-day?limit=1000");
    fill("chart-days", body.rows.length ? stackedColumns("days", body.rows) : el("p", { class: "muted" }, "No sales yet."));
  }

  async function loadRuns() {
    const body = await api("runs?limit=10");
    if (!body.rows.length) return fill("runs", el("p", { class: "muted" }, "No runs yet."));
    const quality = (r) => {
      const read = Math.max(1, r.rows_read);
      const root = svg("svg", { viewBox: "0 0 120 12", class: "quality", "data-chart": "run-quality" });
      let x = 0;
      [[r.rows_written, COLORS[3]], [r.exact_duplicates, COLORS[1]], [r.quarantined, COLORS[0]]].forEach(([n, color]) => {
        const w = (120 * n) / read;
        root.append(svg("rect", { x: x.toFixed(2), y: 0, width: w.toFixed(2), height: 12, fill: color }));
        x += w;
      });
      return root;
    };
    const reasons = (r) => Object.entries(r.quarantined_by_reason || {})
      .sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${fmtCount(v)}`).join(", ");
    fill("runs", table([
      { label: "run", get: (r) => r.run_id },
      { label: "status", get: (r) => (r.status === "failed" ? `failed: ${r.error_code}` : r.status) },
      { label: "partition", get: (r) => r.pa_date },
      { label: "read", num: true, get: (r) => fmtCount(r.rows_read) },
      { label: "kept", num: true, get: (r) => fmtCount(r.rows_written) },
      { label: "duplicates", num: true, get: (r) => fmtCount(r.exact_duplicates) },
      { label: "quarantined", num: true, get: (r) => fmtCount(r.quarantined) },
      { label: "kept / dup / bad", get: quality },
      { label: "top reasons", get: reasons },
    ], body.rows), el("p", { class: "legend" }, "bar: kept (green), exact duplicates (amber), quarantined (red)"));
  }

  async function lookup(clientId, status) {
    const target = "client-result";
    fill(target, el("span", { class: "loading" }, "loading…"));
    const query = new URLSearchParams({ limit: "1000" });
    if (status) query.set("status", status);
    try {
      const body = await api(`clients/${encodeURIComponent(clientId)}/orders?${query}`);
      const rows = body.rows;
      let sales = 0n;
      for (const r of rows) sales += toUnits(r.total_price);
      const name = rows.length ? rows[0].client_name : "";
      const summary = el("p", { id: "client-summary", "data-client": clientId, "data-lines": rows.length, "data-sales": fromUnits(sales) },
        `${name} (client ${clientId}): ${fmtCount(rows.length)} order lines, sales ${fmtMoney(fromUnits(sales))}` +
        (body.page.next_offset !== null ? " — first 1000 lines shown" : ""));
      fill(target, summary, table([
        { label: "order", get: (r) => r.order_id },
        { label: "product", get: (r) => `${r.product_id} ${r.product_description}` },
        { label: "units", num: true, get: (r) => fmtCount(r.product_ccf) },
        { label: "price", num: true, get: (r) => r.product_price },
        { label: "total", num: true, get: (r) => r.total_price },
        { label: "channel", get: (r) => r.point_of_sale_channel },
        { label: "status", get: (r) => r.status },
        { label: "partition", get: (r) => r.pa_date },
      ], rows)).querySelector("table").id = "client-orders";
    } catch (err) {
      if (err.status === 404 || err.status === 400) fill(target, el("p", { class: "muted", id: "client-summary" }, err.message));
      else showError(target, err);
    }
  }

  function guarded(id, load) {
    return load().catch((err) => showError(id, err));
  }

  function loadAll() {
    return Promise.all([
      guarded("chart-products", loadProducts),
      guarded("kpis", loadStatus),
      guarded("chart-channels", loadChannels),
      guarded("chart-days", loadDays),
      guarded("runs", loadRuns),
    ]);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const params = new URLSearchParams(location.search);
    const form = document.getElementById("client-form");
    const input = document.getElementById("client-input");
    const status = document.getElementById("client-status");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const url = new URL(location.href);
      url.searchParams.set("client", input.value.trim());
      history.replaceState(null, "", url);
      lookup(input.value.trim(), status.value);
    });
    document.getElementById("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem(KEY_STORE, document.getElementById("key-input").value);
      document.getElementById("key-form").hidden = true;
      loadAll();
    });
    const pending = [loadAll()];
    if (params.get("client")) {
      input.value = params.get("client");
      pending.push(lookup(input.value, ""));
    }
    Promise.all(pending).then(() => { document.body.dataset.ready = "1"; });
  });
})();
