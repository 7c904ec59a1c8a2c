// Inline SVG charts (no library): the budget burn-down against its ideal line, and requests/errors.
"use strict";

window.SGCharts = (function () {
  const { s } = SG;
  const W = 640, H = 236, L = 62, R = 12, T = 26, B = 26;

  function scaleX(t0, t1) { return (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R); }
  function scaleY(lo, hi) { return (v) => T + (1 - (v - lo) / Math.max(1e-12, hi - lo)) * (H - T - B); }

  function timeLabel(ms, span) {
    const d = new Date(ms);
    const iso = d.toISOString();
    return span > 2 * 86400000 ? iso.slice(5, 10) : iso.slice(11, 16);
  }

  function axes(x, y, t0, t1, yTicks, yFmt) {
    const g = [];
    for (const v of yTicks) {
      g.push(s("line", { class: "gridline", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      g.push(s("text", { class: "tick", x: L - 6, y: y(v), "text-anchor": "end", "dominant-baseline": "middle" }, yFmt(v)));
    }
    for (let i = 0; i <= 4; i++) {
      const t = t0 + ((t1 - t0) * i) / 4;
      g.push(s("text", { class: "tick", x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" },
        timeLabel(t, t1 - t0)));
    }
    return g;
  }

  function svgRoot(label, ...children) {
    return s("svg", { class: "chart-svg", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label }, children);
  }

  /** Legend entries in the top margin, left to right. */
  function legend(entries) {
    let x = L;
    return entries.map(([cls, text]) => {
      const node = s("text", { class: "legend " + cls, x: x, y: 12 }, text);
      x += 12 + 6.2 * text.length;
      return node;
    });
  }

  function points(xs, ys, x, y) {
    const out = [];
    for (let i = 0; i < xs.length; i++) out.push(x(xs[i]).toFixed(1) + "," + y(ys[i]).toFixed(1));
    return out.join(" ");
  }

  /** Budget left over the period, from 100% at its start, against the straight line to 0 at its end. */
  function burnDown(bd) {
    const t0 = bd.start_ms, t1 = bd.end_ms;
    const lo = Math.min(0, ...bd.remaining), hi = 1;
    const x = scaleX(t0, t1), y = scaleY(lo, hi);
    const ticks = [0, 1, 2, 3, 4].map((i) => lo + ((hi - lo) * i) / 4);
    return svgRoot("error budget burn-down",
      axes(x, y, t0, t1, ticks, (v) => Math.round(v * 100) + "%"),
      s("polyline", { class: "ideal", points: points([t0, t1], [1, 0], x, y) }),
      s("polyline", { class: "actual", id: "burndown-line", points: points(bd.t_ms, bd.remaining, x, y),
        "data-value": bd.remaining[bd.remaining.length - 1] }),
      legend([["actual-text", "budget left"], ["ideal-text", "- - ideal (even spend, 0 at the period end)"]]));
  }

  /** Events (bars) and bad events (bars in front) per step over the last hours. */
  function recent(r) {
    const n = r.events.length;
    const t0 = r.start_ms, t1 = r.start_ms + n * r.step_ms;
    const peak = Math.max(1, ...r.events);
    const x = scaleX(t0, t1), y = scaleY(0, peak);
    const bw = Math.max(0.5, (W - L - R) / Math.max(1, n));
    const bars = [], bads = [];
    for (let i = 0; i < n; i++) {
      const t = t0 + i * r.step_ms;
      if (r.events[i]) bars.push(s("rect", { class: "events", x: x(t).toFixed(1), y: y(r.events[i]).toFixed(1), width: bw.toFixed(2), height: (y(0) - y(r.events[i])).toFixed(1) }));
      if (r.bad_events[i]) bads.push(s("rect", { class: "errors", x: x(t).toFixed(1), y: y(r.bad_events[i]).toFixed(1), width: bw.toFixed(2), height: (y(0) - y(r.bad_events[i])).toFixed(1) }));
    }
    const fmt = (v) => (v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k" : String(Math.round(v)));
    return svgRoot("requests and errors",
      axes(x, y, t0, t1, [0, peak / 2, peak], fmt), bars, bads,
      legend([["events-text", "events per " + Math.round(r.step_ms / 1000) + " s"], ["errors-text", "bad events"]]));
  }

  return { burnDown, recent };
})();
