// An SLO (as a whole, or one series of it: /slo/<name>?endpoint=...&customer=...): tiles, burn-down,
// recent traffic, the multiwindow alert tiers, burn per window, its series, latency and definition.
"use strict";

(function () {
  const { h, clear, byId } = SG;
  const name = decodeURIComponent(location.pathname.slice("/slo/".length));
  const SERIES_PAGE = 50;

  function tile(label, value, text, cls) {
    return h("div", { class: "tile " + (cls || ""), "data-name": label },
      h("div", { class: "tile-label" }, label),
      h("div", { class: "tile-value", "data-value": value }, text));
  }

  function tiles(d) {
    const t = d.tiles;
    const level = t.budget_remaining < 0 ? "over" : t.budget_remaining < 0.25 ? "low" : "";
    return [
      tile("objective", t.objective, t.objective_percent + "%"),
      tile("attainment", t.attainment, SG.pct(t.attainment, 3)),
      tile("budget left", t.budget_remaining, SG.pct(t.budget_remaining), level),
      tile("budget exhausted in", t.exhaustion_eta_seconds,
        t.exhaustion_eta_seconds === null ? "not burning" : SG.duration(t.exhaustion_eta_seconds)),
      tile("events (period)", t.events, SG.num(t.events)),
      tile("bad events (period)", t.bad_events, SG.num(t.bad_events)),
    ];
  }

  function tiersTable(d) {
    const rows = d.tiers.map((t) => h("tr", { class: t.firing ? "firing" : "", "data-tier": t.tier },
      h("td", null, h("span", { class: "badge " + t.severity }, t.severity)),
      h("td", null, t.long_window), h("td", null, t.short_window),
      h("td", { class: "num" }, SG.rate(t.factor) + "×"),
      h("td", { class: "num" }, SG.pct(t.error_ratio_threshold, 3)),
      h("td", { class: "num", "data-value": t.long_burn_rate }, SG.rate(t.long_burn_rate)),
      h("td", { class: "num", "data-value": t.short_burn_rate }, SG.rate(t.short_burn_rate)),
      h("td", { class: "num" }, SG.num(t.long_events) + " / " + SG.num(t.min_events)),
      h("td", null, t.for_seconds ? SG.duration(t.for_seconds) : "–"),
      h("td", { class: "state", "data-value": t.firing ? 1 : 0 },
        t.firing ? (d.series || d.series_count <= 1 ? "FIRING" : "FIRING (" + t.firing_series + " series)") : "ok")));
    return SG.table(["severity", "long window", "short window", "factor", "error ratio above",
      "long burn", "short burn", "events / min", "for", "state"], rows, "grid tiers");
  }

  function windowsTable(d) {
    const rows = d.windows.map((w) => h("tr", { "data-name": w.window },
      h("td", null, w.window), h("td", { class: "num" }, SG.num(w.events)),
      h("td", { class: "num" }, SG.num(w.bad_events)),
      h("td", { class: "num", "data-value": w.error_ratio }, SG.pct(w.error_ratio, 3)),
      h("td", { class: "num", "data-value": w.burn_rate }, SG.rate(w.burn_rate))));
    return SG.table(["window", "events", "bad", "error ratio", "burn rate"], rows, "grid windows");
  }

  function latencyTable(d) {
    if (!d.latency.length) return h("p", { class: "quiet" }, "No latency groups for this SLO.");
    const names = Object.keys(d.latency[0].windows[0].percentiles_ms);
    const rows = [];
    for (const g of d.latency) {
      for (const w of g.windows) {
        rows.push(h("tr", null, h("td", null, SG.labelText(g.labels)), h("td", null, w.window),
          h("td", { class: "num" }, SG.num(w.events)),
          names.map((p) => h("td", { class: "num" }, w.events ? w.percentiles_ms[p].toFixed(1) + " ms" : "–"))));
      }
    }
    return SG.table(["group", "window", "events", ...names], rows, "grid latency");
  }

  function definitionBlock(d) {
    const s = d.slo;
    const items = [["service", s.service], ["SLI", s.sli.type + " — bad: " + s.bad_event],
      ["objective", s.objective_percent + "% over " + s.period], ["endpoints", s.endpoints.join(", ") || "all"],
      ["grouped by", s.group_by.join(", ") || "nothing"],
      ["buckets", s.resolution_seconds.fine + " s (≤ 6 h windows), " + s.resolution_seconds.coarse + " s (longer, period)"]];
    return [h("p", { class: "explain" }, s.explanation),
      h("dl", { class: "def" }, items.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]))];
  }

  async function seriesPage(offset) {
    const out = clear(byId("series"));
    let page;
    try {
      page = await SG.getJSON("/api/v1/slos/" + encodeURIComponent(name) + "/series?limit=" + SERIES_PAGE + "&offset=" + offset);
    } catch (e) {
      out.appendChild(h("p", { class: "error" }, "Could not load the series: " + e.message));
      return;
    }
    const rows = page.items.map((r) => h("tr", null,
      h("td", null, h("a", { href: SG.seriesHref(name, r.labels) }, SG.labelText(r.labels))),
      h("td", { class: "budget-cell" }, SG.budgetBar(r.budget_remaining)),
      r.burn.map((b) => h("td", { class: "num" }, SG.rate(b.burn_rate))),
      h("td", { class: "num" }, SG.num(r.events)),
      h("td", null, SG.firingBadges(r.firing))));
    const burns = page.items.length ? page.items[0].burn.map((b) => "burn " + b.window) : [];
    out.appendChild(SG.table(["series", "budget left", ...burns, "events", "firing"], rows, "grid series"));
    out.appendChild(SG.pager(offset, page, SERIES_PAGE, seriesPage, ", worst budget first"));
  }

  async function main() {
    let d;
    try {
      d = await SG.getJSON("/api/v1/slos/" + encodeURIComponent(name) + location.search);
    } catch (e) {
      SG.status("Could not load SLO " + name + ": " + e.message, true);
      return;
    }
    SG.status("");
    SG.asOf(d.now_ms);
    document.title = name + " · sloguard";
    byId("title").textContent = name;
    const crumbs = byId("crumbs");
    crumbs.appendChild(h("a", { href: "/" }, "SLOs"));
    crumbs.appendChild(document.createTextNode(" / " + d.slo.service + " / "));
    if (d.series) {
      crumbs.appendChild(h("a", { href: "/slo/" + encodeURIComponent(name) }, name));
      byId("title").appendChild(h("span", { class: "series-labels", id: "series-labels" }, " " + SG.labelText(d.series)));
    } else {
      crumbs.appendChild(document.createTextNode(name));
    }
    byId("desc").textContent = d.slo.description || "";
    SG.clear(byId("tiles")).append(...tiles(d));
    const bd = byId("burndown");
    if (d.burn_down) bd.appendChild(SGCharts.burnDown(d.burn_down));
    else bd.appendChild(h("p", { class: "quiet" }, "No history for this series (the SLO was reloaded or the series evicted)."));
    const rc = byId("recent");
    if (d.recent) {
      byId("recent-caption").textContent = "Requests and errors, last " + d.recent.window;
      rc.appendChild(SGCharts.recent(d.recent));
    }
    byId("tiers").appendChild(tiersTable(d));
    byId("windows").appendChild(windowsTable(d));
    byId("latency").appendChild(latencyTable(d));
    byId("definition").append(...definitionBlock(d));
    if (!d.series && d.slo.group_by.length) {
      byId("series-section").hidden = false;
      byId("series-section").querySelector("h2").textContent =
        "Series (" + SG.num(d.series_count) + (d.overflow_events ? ", " + SG.num(d.overflow_events) + " events in overflow" : "") + ")";
      seriesPage(0);
    }
  }

  main();
})();
