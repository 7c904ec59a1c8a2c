// The SLO list: worst budget first; filter by service, grouping label or text; optionally grouped by
// service. Filters live in the URL (?service=&label=&q=&group=1) so a view can be shared.
"use strict";

(function () {
  const { h, clear, byId } = SG;
  let all = [];

  function matches(row, f) {
    if (f.service && row.service !== f.service) return false;
    if (f.label === "none" && row.group_by.length) return false;
    if (f.label && f.label !== "none" && !row.group_by.includes(f.label)) return false;
    if (f.q) {
      const hay = [row.name, row.service, row.description, row.sli, ...row.group_by].join(" ").toLowerCase();
      if (!hay.includes(f.q.toLowerCase())) return false;
    }
    return true;
  }

  function row(r) {
    const burn = r.burn.map((b) => h("td", { class: "num", "data-value": b.burn_rate, title: b.window + " burn rate" },
      SG.rate(b.burn_rate)));
    const worst = r.worst_series
      ? h("div", { class: "sub" }, "worst: ", h("a", { href: SG.seriesHref(r.name, r.worst_series.labels) },
          SG.labelText(r.worst_series.labels)), " ", SG.pct(r.worst_series.budget_remaining))
      : null;
    const series = r.group_by.length
      ? [SG.num(r.series), r.overflow_events ? h("div", { class: "sub warn" }, SG.num(r.overflow_events) + " overflow") : null]
      : ["–"];
    return h("tr", { class: "slo", "data-name": r.name },
      h("td", null, r.service),
      h("td", null, h("a", { href: "/slo/" + encodeURIComponent(r.name) }, r.name),
        r.description ? h("div", { class: "sub" }, r.description) : null),
      h("td", { class: "num" }, r.objective_percent + "%"),
      h("td", null, r.period),
      h("td", { class: "num", "data-value": r.attainment }, SG.pct(r.attainment, 3)),
      h("td", { class: "budget-cell" }, SG.budgetBar(r.budget_remaining), worst),
      burn,
      h("td", null, SG.firingBadges(r.group_by.length ? r.firing : r.firing.map((f) => f.tier))),
      h("td", { class: "num" }, series));
  }

  function header(rows) {
    const b = rows.length ? rows[0].burn.map((x) => "burn " + x.window) : ["burn 1h", "burn 6h"];
    return ["service", "SLO", "objective", "period", "SLI (period)", "budget left", ...b, "firing", "series"];
  }

  function render() {
    const f = {
      service: byId("f-service").value,
      label: byId("f-label").value,
      q: byId("f-q").value.trim(),
      group: byId("f-group").checked,
    };
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) q.set(k, v === true ? "1" : v);
    history.replaceState(null, "", q.toString() ? "?" + q.toString() : location.pathname);
    const rows = all.filter((r) => matches(r, f));
    const out = clear(byId("slos"));
    SG.status(rows.length ? "" : all.length ? "No SLO matches these filters." : "No SLOs configured.");
    if (!rows.length) return;
    if (!f.group) {
      out.appendChild(SG.table(header(rows), rows.map(row), "grid slos"));
      return;
    }
    const services = [...new Set(rows.map((r) => r.service))].sort();
    for (const svc of services) {
      const mine = rows.filter((r) => r.service === svc);
      out.appendChild(h("section", { class: "group" }, h("h2", null, svc, h("span", { class: "sub" }, " " + mine.length + " SLOs")),
        SG.table(header(mine), mine.map(row), "grid slos")));
    }
  }

  async function main() {
    const params = new URLSearchParams(location.search);
    try {
      const got = await SG.getAll("/api/v1/slos");
      all = got.items;
      SG.asOf(got.now_ms);
    } catch (e) {
      SG.status("Could not load the SLOs: " + e.message, true);
      return;
    }
    const sel = byId("f-service");
    for (const svc of [...new Set(all.map((r) => r.service))].sort()) sel.appendChild(h("option", { value: svc }, svc));
    sel.value = params.get("service") || "";
    byId("f-label").value = params.get("label") || "";
    byId("f-q").value = params.get("q") || "";
    byId("f-group").checked = params.get("group") === "1";
    const form = byId("filters");
    form.addEventListener("input", render);
    form.addEventListener("change", render);
    form.addEventListener("submit", (e) => e.preventDefault());
    render();
  }

  main();
})();
