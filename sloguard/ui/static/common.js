// sloguard UI helpers. Label values come from request logs and are attacker-controlled: every value
// reaches the page through textContent / createTextNode, or setAttribute on an attribute from the
// allow-list below (never innerHTML, never an event handler, never a javascript: URL).
"use strict";

window.SG = (function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const ATTRS = new Set([
    "class", "id", "href", "title", "role", "scope", "colspan", "value", "type", "hidden",
    "aria-label", "aria-current", "aria-valuenow", "aria-valuemin", "aria-valuemax",
    "data-value", "data-tier", "data-labels", "data-name", "data-severity",
    // SVG geometry
    "viewBox", "preserveAspectRatio", "width", "height", "x", "y", "x1", "x2", "y1", "y2",
    "points", "d", "r", "cx", "cy", "text-anchor", "dominant-baseline",
  ]);

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (!ATTRS.has(k)) throw new Error("attribute not allowed: " + k);
      let value = String(v);
      if (k === "href" && !value.startsWith("/")) throw new Error("only same-site links");
      node.setAttribute(k, value);
    }
  }

  function append(node, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(node, c);
      else if (c instanceof Node) node.appendChild(c);
      else node.appendChild(document.createTextNode(String(c)));
    }
  }

  /** An HTML element: h("td", {class: "num"}, "text", child, ...). */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  /** An SVG element, same calling convention. */
  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function byId(id) { return document.getElementById(id); }

  async function getJSON(url) {
    const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      const why = body && body.error ? body.error : resp.status + " " + resp.statusText;
      throw new Error(why);
    }
    return body;
  }

  /** Every item of a paginated list (bounded: at most `max` items). */
  async function getAll(url, max) {
    const items = [];
    let offset = 0;
    let first = null;
    const sep = url.includes("?") ? "&" : "?";
    while (offset !== null && items.length < (max || 5000)) {
      const page = await getJSON(url + sep + "limit=500&offset=" + offset);
      first = first || page;
      items.push(...page.items);
      offset = page.next_offset;
    }
    return { items: items, now_ms: first ? first.now_ms : null, total: first ? first.total : 0 };
  }

  function status(text, isError) {
    const el = byId("status");
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
    el.classList.toggle("error", !!isError);
  }

  function asOf(nowMs) {
    const el = byId("asof");
    if (el && nowMs) el.textContent = "as of " + new Date(nowMs).toISOString().replace(".000Z", "Z");
  }

  // -- formatting --------------------------------------------------------------------------------

  function pct(x, digits) {
    if (x === null || x === undefined) return "–";
    const d = digits === undefined ? 2 : digits;
    return (x * 100).toFixed(d) + "%";
  }

  function num(n) {
    if (n === null || n === undefined) return "–";
    return Number(n).toLocaleString("en-US");
  }

  function rate(x) {
    if (x === null || x === undefined) return "–";
    if (x === 0) return "0";
    return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds <= 0) return "exhausted";
    const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
    const out = [];
    let rest = Math.round(seconds);
    for (const [u, n] of units) {
      if (rest >= n && out.length < 2) {
        out.push(Math.floor(rest / n) + u);
        rest %= n;
      }
    }
    return out.join(" ") || "0s";
  }

  /** The budget-left bar: a meter with the value as text next to it. */
  function budgetBar(remaining) {
    const clamped = Math.max(0, Math.min(1, remaining === null ? 1 : remaining));
    const level = remaining < 0 ? "over" : remaining < 0.25 ? "low" : remaining < 0.5 ? "mid" : "ok";
    const fill = s("rect", { class: "fill " + level, x: 0, y: 0, width: (clamped * 100).toFixed(2), height: 8 });
    const bar = s("svg", { class: "bar", viewBox: "0 0 100 8", preserveAspectRatio: "none", role: "img",
      "aria-label": "budget left " + pct(remaining) }, s("rect", { class: "track", x: 0, y: 0, width: 100, height: 8 }), fill);
    return h("span", { class: "budget" }, bar, h("span", { class: "num", "data-value": remaining }, pct(remaining)));
  }

  /** Link to a series page: /slo/<name>?dim=value... (values are encoded, never interpreted). */
  function seriesHref(slo, labels) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(labels || {})) q.append(k, v);
    const qs = q.toString();
    return "/slo/" + encodeURIComponent(slo) + (qs ? "?" + qs : "");
  }

  function labelText(labels) {
    const parts = Object.entries(labels || {}).map(([k, v]) => k + "=" + v);
    return parts.length ? parts.join(", ") : "(all)";
  }

  function firingBadges(firing) {
    if (!firing || !firing.length) return h("span", { class: "quiet" }, "–");
    return h("span", { class: "badges" }, firing.map((f) => {
      const name = typeof f === "string" ? f : f.tier;
      const sev = (typeof f === "string" ? f : f.severity).startsWith("page") ? "page" : "ticket";
      const extra = typeof f === "string" || f.series === undefined ? "" : " ×" + f.series;
      return h("span", { class: "badge " + sev, "data-tier": name }, name + extra);
    }));
  }

  function table(headers, rows, cls) {
    return h("table", { class: cls || "grid" },
      h("thead", null, h("tr", null, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, rows));
  }

  /** "1–50 of 1,234" with previous/next buttons calling show(offset). */
  function pager(offset, page, size, show, what) {
    const nav = h("nav", { class: "pager" },
      h("span", null, (offset + 1) + "–" + (offset + page.items.length) + " of " + num(page.total) + (what || "") + " "));
    const step = (label, to) => {
      const b = h("button", { type: "button" }, label);
      b.addEventListener("click", () => show(to));
      nav.appendChild(b);
    };
    if (offset > 0) step("previous", Math.max(0, offset - size));
    if (page.next_offset !== null) step("next", page.next_offset);
    return nav;
  }

  return { h, s, clear, pager, byId, getJSON, getAll, status, asOf, pct, num, rate, duration, budgetBar,
    seriesHref, labelText, firingBadges, table };
})();
