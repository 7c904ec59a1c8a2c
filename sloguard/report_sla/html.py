"""The SLA report as one self-contained HTML page: no script, no fetch, one inline style sheet allowed by
the page's own Content-Security-Policy through its SHA-256 hash (so the page stays CSP-clean when a
server adds ``default-src 'none'``-style headers of its own, and opens from disk or an e-mail).

Per SLA: what is measured and the credit tiers, a count of customers per tier, then one row per
customer, worst attainment first, with a `<meter>` for the attainment and the downtime periods in a
`<details>`. Everything shown comes from the JSON document (`render.sla_dict`), escaped.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Any

STYLE = """
:root{color-scheme:light dark;--fg:#1d2330;--bg:#fff;--mute:#5f6b7a;--line:#d9dee5;--c0:#1f8a4c;
--c1:#b7791f;--c2:#c05621;--c3:#c53030;--na:#718096}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ee;--bg:#14171c;--mute:#9aa5b1;--line:#2d333b}}
body{font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:2rem auto;
max-width:1200px;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin:2rem 0 .25rem}
.meta,.mute{color:var(--mute)}.warn{border-left:4px solid var(--c3);padding:.25rem .75rem;margin:.5rem 0}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.3rem .5rem;
border-bottom:1px solid var(--line);vertical-align:top}th{font-weight:600}td.n{text-align:right;
font-variant-numeric:tabular-nums}meter{width:8rem}
.tiers{width:auto}.tiers td,.tiers th{border:none;padding:.1rem .75rem .1rem 0}
.summary span{margin-right:1rem}
.badge{display:inline-block;border-radius:3px;padding:0 .4rem;color:#fff;font-weight:600}
.t0{background:var(--c0)}.t1{background:var(--c1)}.t2{background:var(--c2)}.t3{background:var(--c3)}
.na{background:var(--na)}details summary{cursor:pointer}ul{margin:.25rem 0;padding-left:1.2rem}
"""


def _hash(style: str) -> str:
    digest = hashlib.sha256(style.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


#: The page's own policy: nothing may load or run but its one style sheet.
CSP = f"default-src 'none'; style-src {_hash(STYLE)}; base-uri 'none'; form-action 'none'"


def _pct(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f} %"


def _tier_class(credit: float | None, tiers: list[float]) -> str:
    """``t0`` no credit, ``t1``.. by tier rank (lowest percent first), ``na`` no figure."""
    if credit is None:
        return "na"
    if credit == 0:
        return "t0"
    return f"t{min(3, sorted(tiers).index(credit) + 1)}" if credit in tiers else "t3"


def _badge(c: dict[str, Any], tiers: list[float]) -> str:
    if c["status"] != "OK":
        return '<span class="badge na">insufficient data</span>'
    credit = c["credit_percent"]
    return f'<span class="badge {_tier_class(credit, tiers)}">{escape(_badge_text(credit))}</span>'


def _downtime(c: dict[str, Any]) -> str:
    periods = c["downtime"]
    if not periods:
        return '<span class="mute">none</span>'
    minutes = sum(d["seconds"] for d in periods) / 60
    items = "".join(
        f"<li>{escape(d['start'])} – {escape(d['end'])} ({d['seconds'] / 60:g} min, "
        f"{d['bad']}/{d['total']} bad)</li>"
        for d in periods
    )
    n = f"{len(periods)} period{'s' if len(periods) > 1 else ''}"
    return f"<details><summary>{n}, {minutes:g} min</summary><ul>{items}</ul></details>"


def _row(c: dict[str, Any], tiers: list[float]) -> str:
    att = c["attainment_percent"]
    meter = (
        "" if att is None else f'<meter min="90" max="100" low="99" high="99.9" optimum="100" value="{att}">'
    )
    meter += "</meter>" if meter else ""
    projected = c["projected_percent"]
    return (
        f"<tr><td>{escape(c['customer'])}</td><td>{_badge(c, tiers)}</td>"
        f'<td class="n">{_pct(att)}</td><td>{meter}</td>'
        f'<td class="n">{c["good"]}/{c["total"]}</td>'
        f'<td class="n">{c["slices"] - c["good_slices"]}/{c["slices"]}</td>'
        f'<td class="n">{_pct(projected)}</td><td>{_downtime(c)}</td></tr>'
    )


def _sla(s: dict[str, Any]) -> str:
    tiers = [t["percent"] for t in s["credits"]]
    m = s["measure"]
    rule = ", ".join(f"{escape(k)} {escape(str(v))}" for k, v in m.items() if k != "method")
    tier_rows = "".join(
        f"<tr><td>below {t['below']:g} %</td><td>{t['percent']:g} %</td></tr>" for t in s["credits"]
    )
    counts: dict[str, int] = {}
    for c in s["customers"]:
        key = "insufficient data" if c["status"] != "OK" else _badge_text(c["credit_percent"])
        counts[key] = counts.get(key, 0) + 1
    summary = "".join(f"<span>{escape(k)}: <b>{v}</b></span>" for k, v in counts.items())
    warnings = "".join(f'<p class="warn">{escape(w)}</p>' for w in s["warnings"])
    excluded = "; ".join(
        f"{escape(p['start'])} – {escape(p['end'])} {escape(p['name'])}"
        + (f" ({escape(p['reason'])})" if p["reason"] else "")
        for p in s.get("excluded", ())
    )
    if excluded:
        warnings += f'<p class="meta">maintenance windows, not counted: {excluded}</p>'
    customers = sorted(
        s["customers"],
        key=lambda c: (c["attainment_percent"] is None, c["attainment_percent"] or 0, c["customer"]),
    )
    rows = "".join(_row(c, tiers) for c in customers)
    state = "complete" if s["complete"] else f"in progress at {escape(s['now'])} (projection to the end)"
    preset = f", preset {escape(s['preset'])}" if s["preset"] else ""
    return f"""<section>
<h2>{escape(s["name"])}</h2>
<p class="meta">SLO {escape(s["slo"])}, per {escape(s["per"])}{preset}; {escape(m["method"])} ({rule});
{escape(s["start"])} – {escape(s["end"])}, {state}; {s["events"]} events</p>
<table class="tiers"><tr><th>attainment</th><th>credit</th></tr>{tier_rows}</table>
<p class="summary">{summary}</p>{warnings}
<table class="customers"><thead><tr><th>customer</th><th>credit</th><th>attainment</th><th></th>
<th>good/total events</th><th>bad/all slices</th><th>projected</th><th>downtime periods</th></tr></thead>
<tbody>{rows}</tbody></table>
</section>"""


def _badge_text(credit: float) -> str:
    return "no credit" if credit == 0 else f"{credit:g} % credit"


def to_html(doc: dict[str, Any], generated: str) -> str:
    """The page for the document `render.to_dict` builds."""
    sections = "\n".join(_sla(s) for s in doc["slas"])
    invalid = sum(doc["invalid"].values())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>SLA report</title><style>{STYLE}</style></head>
<body><h1>SLA report</h1>
<p class="meta">generated by sloguard at {escape(generated)} from {doc["events"]} events ({invalid} lines
rejected)</p>
{sections}
</body></html>
"""
