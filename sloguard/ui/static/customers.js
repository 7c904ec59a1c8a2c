// Customers ranked by the error budget their series burned, across customer-grouped SLOs.
"use strict";

(function () {
  const { h, clear, byId } = SG;
  const PAGE = 100;

  async function show(offset) {
    let page;
    try {
      page = await SG.getJSON("/api/v1/customers?limit=" + PAGE + "&offset=" + offset);
    } catch (e) {
      SG.status("Could not load the customers: " + e.message, true);
      return;
    }
    SG.asOf(page.now_ms);
    SG.status(page.total ? "" : "No SLO is grouped by customer.");
    const out = clear(byId("customers"));
    const rows = page.items.map((c) => h("tr", { class: "customer" },
      h("td", { class: "customer-name" }, c.customer),
      h("td", { class: "num", "data-value": c.worst_budget_consumed }, SG.pct(c.worst_budget_consumed)),
      h("td", null, h("ul", { class: "links" }, c.series.map((s) => h("li", null,
        h("a", { href: SG.seriesHref(s.slo, s.labels) }, s.slo + " " + SG.labelText(s.labels)),
        " ", SG.pct(s.budget_consumed) + " spent ", SG.firingBadges(s.firing))),
        c.series_total > c.series.length ? h("li", { class: "quiet" }, "… " + (c.series_total - c.series.length) + " more") : null))));
    if (rows.length) out.appendChild(SG.table(["customer", "worst budget spent", "series"], rows, "grid customers"));
    const pager = clear(byId("pager"));
    if (page.total) pager.appendChild(SG.pager(offset, page, PAGE, show));
  }

  show(0);
})();
