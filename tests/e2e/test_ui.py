"""The web UI in a real browser (Debian's headless chromium, driven by selenium through chromium-driver)
against `sloguard run` as a process, fed through a Tansu broker by the load generator with an outage,
plus hand-written request-log lines whose customer id is an XSS payload.

Checked: the list loads without console errors, worst budget first, and its filter works; the detail
page of the outage's series draws the burn-down, shows the numbers /metrics exports for that series, and
shows the firing page tier; the payload renders as text, no dialog opens, no element is injected; every
page carries the CSP; with the system asking for a dark color scheme (emulated through the DevTools
protocol) every page is dark with light text, and light again without. With ``SLOGUARD_WRITE_DOCS=1``
(`make screenshots`) the pictures of the list and of the detail page are written to docs/img/ for the
README.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from sloguard.broker import LocalBroker, free_port
from sloguard.ingest.kafka import KafkaConfig
from sloguard.ingest.kafka_producer import BatchProducer
from sloguard.loadgen import run_loadgen
from sloguard.ui.routes import CSP
from tests.e2e.test_faults import DaemonProc, wait
from tests.unit.export.httpclient import get
from tests.unit.export.test_http_pressure import SLOW, slow_client

pytestmark = pytest.mark.kafka

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"
SLO = "checkout-availability"
CUSTOMER_SLO = "checkout-per-customer"
ENDPOINT = "POST /v1/checkout"
#: Load: this many events/s for this long, all of them stamped this far in the past, so that every event
#: lies in a closed bucket once consumed and the numbers stop moving (the windows cover them for minutes).
RATE, DURATION_S, BACKDATE_MS = 1500.0, 6.0, 40_000
XSS_EVENTS = 60

SLOS = f"""\
apiVersion: sloguard/v1
slos:
  - name: {SLO}
    service: checkout
    description: Checkout answers without a server error
    objective: 99.9
    sli: {{type: availability}}
    window: 30d
    group_by: [endpoint]
    resolution: {{fine: 10s, coarse: 10s}}
    alerts:
      min_events: 10
  - name: {CUSTOMER_SLO}
    service: checkout
    objective: 99
    sli: {{type: availability}}
    window: 30d
    group_by: [customer]
    resolution: {{fine: 10s, coarse: 10s}}
  - name: search-latency
    service: search
    objective: 99
    sli: {{type: latency, threshold_ms: 400}}
    window: 28d
latency:
  group_by: [service, endpoint]
  percentiles: [50, 90, 99]
  windows: [1m, 5m, 1h]
"""


def xss_lines(start_ms: int) -> list[bytes]:
    """Request-log lines as a real gateway writes them (extra and nested fields, any key order, an
    escaped character), with an attacker's customer id; a third of them fail."""
    rnd = random.Random(3)
    lines = []
    for i in range(XSS_EVENTS):
        record = {
            "request_id": f"req-{i:05d}",
            "latency_ms": round(rnd.lognormvariate(4, 0.5), 3),
            "http": {"ua": 'curl/8.5 "quoted"', "proto": "HTTP/2"},
            "customer": XSS,
            "status": 503 if i % 3 == 0 else 200,
            "endpoint": "GET /v1/cart",
            "ts": start_ms + i * 50,
            "service": "checkout",
            "tags": ["a\u00e9", 1, None],
        }
        lines.append(json.dumps(dict(rnd.sample(list(record.items()), len(record)))).encode())
    return lines


def history_lines(now_ms: int, n: int = 8000) -> list[bytes]:
    """Three weeks of quiet checkout traffic before the run (RFC 3339 times, a rare 5xx), so that the
    burn-down has a past: absorbed late, into the coarse buckets of the period."""
    rnd = random.Random(4)
    endpoints = ("GET /v1/cart", "POST /v1/checkout", "GET /v1/orders")
    lines = []
    for _ in range(n):
        ts = now_ms - rnd.randrange(3_600_000, 21 * 86_400_000)
        stamp = dt.datetime.fromtimestamp(ts / 1000, dt.UTC).isoformat(timespec="milliseconds")
        record = {
            "ts": stamp.replace("+00:00", "Z"),
            "service": "checkout",
            "endpoint": rnd.choice(endpoints),
            "customer": f"cust-{rnd.randrange(1, 40):04d}",
            "status": 500 if rnd.random() < 0.0004 else 200,
            "latency_ms": round(rnd.lognormvariate(4, 0.6), 3),
            "trace": {"id": f"{rnd.getrandbits(64):016x}"},
        }
        lines.append(json.dumps(record).encode())
    return lines


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    async with BatchProducer(KafkaConfig(bootstrap, (topic,))) as producer:
        futures = await producer.send(topic, 0, values)
        await producer.flush()
        await asyncio.gather(*futures)


@dataclass
class Live:
    daemon: DaemonProc
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.daemon.port}"

    def value(self, name: str, **labels: str) -> float:
        return self.metrics[(name, tuple(sorted(labels.items())))]


def settled(proc: DaemonProc, previous: list[object]) -> bool:
    """Every partition read to the end, the payload's series there, and two scrapes in a row agreeing on
    every SLO count (the events all lie in closed buckets, so they stop changing once absorbed)."""
    m = proc.scrape()
    lag = [v for (name, _), v in m.items() if name == "sloguard_consumer_lag"]
    counts = sorted((k, v) for k, v in m.items() if k[0] == "sloguard_slo_events")
    xss = any(dict(lab).get("customer") == XSS for (_, lab), _ in counts)
    same = previous == [counts]
    previous[:] = [counts]
    return bool(lag) and not any(lag) and xss and same


@pytest.fixture(scope="module")
def live(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("ui")
    topic = f"ui-{os.getpid()}-{random.randrange(1 << 30)}"
    broker.create_topics([topic], 2)
    (tmp / "slos.yaml").write_text(SLOS)
    port = free_port()
    log_path = tmp / "daemon.log"
    log = log_path.open("wb")
    env = {
        **os.environ,
        "SLOGUARD_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "SLOGUARD_KAFKA__TOPICS": topic,
        "SLOGUARD_KAFKA__GROUP_ID": f"g-{topic}",
        "SLOGUARD_TICK_SECONDS": "0.5",
        "SLOGUARD_LOG_FORMAT": "json",
    }
    args = [
        sys.executable,
        "-m",
        "sloguard",
        "run",
        "--config",
        str(tmp / "slos.yaml"),
        "--listen",
        f"127.0.0.1:{port}",
    ]
    proc = DaemonProc(
        subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT), port, log_path, log
    )
    try:
        wait(lambda: proc.status("/readyz")[0] == 200, 60, "the daemon to be ready", proc)
        start = time.time_ns() // 1_000_000 - BACKDATE_MS
        asyncio.run(
            run_loadgen(
                broker.bootstrap,
                topic,
                rate=RATE,
                duration_s=DURATION_S,
                scenario="outage",
                service="checkout",
                endpoint=ENDPOINT,
                incident_at_s=1.0,
                incident_for_s=600,
                start_ms=start,
            )
        )
        asyncio.run(produce(broker.bootstrap, topic, history_lines(start) + xss_lines(start)))
        previous: list[object] = []
        wait(lambda: settled(proc, previous), 60, "every event absorbed and the numbers settled", proc)
        yield Live(proc, proc.scrape())
    finally:
        if proc.popen.poll() is None:
            proc.terminate(30)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path_factory.mktemp('chromium'))}",
    ):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A driver path given: Selenium Manager is never run, so nothing is downloaded.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: WebDriver, url: str, ready_css: str) -> None:
    driver.get(url)
    try:
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ready_css))
    except TimeoutException:
        pytest.fail(f"{url}: {ready_css} never appeared; status: {driver.find_element(By.ID, 'status').text}")


def console_errors(driver: WebDriver) -> list[str]:
    """Console messages at error level since the last call (chromedriver's log, read and cleared)."""
    entries: list[dict[str, str]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [e["message"] for e in entries if e["level"] in ("SEVERE", "ERROR")]


def no_dialog(driver: WebDriver) -> bool:
    try:
        _ = driver.switch_to.alert  # raises when there is none
    except NoAlertPresentException:
        return True
    return False


def shot(driver: WebDriver, name: str) -> None:
    if os.environ.get("SLOGUARD_WRITE_DOCS") == "1":
        driver.save_screenshot(str(REPO / "docs" / "img" / name))


def test_list_loads_sorted_by_budget_and_filters(live: Live, browser: WebDriver) -> None:
    open_page(browser, live.base + "/", "tr.slo")
    assert console_errors(browser) == []
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.slo")
    names = [r.get_attribute("data-name") for r in rows]
    assert set(names) == {SLO, CUSTOMER_SLO, "search-latency"}
    budgets = [
        float(r.find_element(By.CSS_SELECTOR, ".budget .num").get_attribute("data-value") or "nan")
        for r in rows
    ]
    assert budgets == sorted(budgets)
    assert names[0] == SLO  # the outage spends its budget many times over
    shot(browser, "ui-slos.png")

    browser.find_element(By.ID, "f-q").send_keys("per-customer")
    WebDriverWait(browser, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.slo")) == 1)
    assert browser.find_element(By.CSS_SELECTOR, "tr.slo").get_attribute("data-name") == CUSTOMER_SLO
    browser.find_element(By.ID, "f-q").clear()
    Select(browser.find_element(By.ID, "f-service")).select_by_value("search")
    WebDriverWait(browser, 10).until(
        lambda d: (
            [r.get_attribute("data-name") for r in d.find_elements(By.CSS_SELECTOR, "tr.slo")]
            == ["search-latency"]
        )
    )
    assert "service=search" in browser.current_url
    assert console_errors(browser) == []


def test_detail_page_shows_what_metrics_exports(live: Live, browser: WebDriver) -> None:
    query = urllib.parse.urlencode({"endpoint": ENDPOINT})
    open_page(browser, f"{live.base}/slo/{SLO}?{query}", "#burndown-line")
    assert console_errors(browser) == []
    labels = {"slo": SLO, "endpoint": ENDPOINT}

    def tile(name: str) -> float:
        el = browser.find_element(By.CSS_SELECTOR, f'.tile[data-name="{name}"] .tile-value')
        return float(el.get_attribute("data-value") or "nan")

    remaining = live.value("sloguard_slo_error_budget_remaining_ratio", **labels)
    assert tile("budget left") == remaining < 0
    assert tile("events (period)") == live.value("sloguard_slo_events", window="period", **labels)
    assert tile("bad events (period)") == live.value("sloguard_slo_bad_events", window="period", **labels)
    line = browser.find_element(By.ID, "burndown-line")
    assert float(line.get_attribute("data-value") or "nan") == remaining
    assert len((line.get_attribute("points") or "").split()) > 2
    for row in browser.find_elements(By.CSS_SELECTOR, "table.windows tbody tr"):
        window = row.get_attribute("data-name") or ""
        burn = row.find_elements(By.CSS_SELECTOR, "td.num")[-1].get_attribute("data-value")
        assert float(burn or "nan") == live.value("sloguard_slo_burn_rate", window=window, **labels), window

    page = browser.find_element(By.CSS_SELECTOR, 'table.tiers tr[data-tier="page-1h-5m"]')
    assert "firing" in (page.get_attribute("class") or "") and "FIRING" in page.text
    tier = {"severity": "page", "long_window": "1h", "short_window": "5m"}
    assert live.value("sloguard_slo_alert_firing", **tier, **labels) == 1.0
    shot(browser, "ui-slo-detail.png")


def test_attacker_controlled_label_renders_as_text(live: Live, browser: WebDriver) -> None:
    query = urllib.parse.urlencode({"customer": XSS})
    open_page(browser, f"{live.base}/slo/{CUSTOMER_SLO}?{query}", "#series-labels")
    assert browser.find_element(By.ID, "series-labels").text.strip() == f"customer={XSS}"
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    assert no_dialog(browser)
    want = live.value("sloguard_slo_error_budget_remaining_ratio", slo=CUSTOMER_SLO, customer=XSS)
    got = browser.find_element(By.CSS_SELECTOR, '.tile[data-name="budget left"] .tile-value')
    assert float(got.get_attribute("data-value") or "nan") == want

    open_page(browser, live.base + "/customers", "tr.customer")
    names = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "td.customer-name")]
    assert XSS in names
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    assert no_dialog(browser)
    assert console_errors(browser) == []


def luminance(css_color: str) -> float:
    """Relative luminance (WCAG 2) of a computed ``rgb(...)``/``rgba(...)`` color: 0 black .. 1 white."""
    r, g, b = (int(v) / 255 for v in css_color[css_color.index("(") + 1 : -1].split(",")[:3])

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def colors(driver: WebDriver, css: str) -> tuple[float, float]:
    """(background, text) luminance of the first element matching ``css``."""
    got = driver.execute_script(
        "const s = getComputedStyle(document.querySelector(arguments[0]));"
        "return [s.backgroundColor, s.color];",
        css,
    )
    return luminance(got[0]), luminance(got[1])


@pytest.mark.parametrize(
    ("path", "ready", "texts"),
    [
        ("/", "tr.slo", ["h1", "tr.slo td"]),
        (f"/slo/{SLO}?{urllib.parse.urlencode({'endpoint': ENDPOINT})}", "#burndown-line", ["h1", ".tile"]),
        ("/customers", "tr.customer", ["h1", "td.customer-name"]),
    ],
    ids=["list", "detail", "customers"],
)
def test_pages_follow_a_dark_color_scheme(
    live: Live, browser: WebDriver, path: str, ready: str, texts: list[str]
) -> None:
    for scheme in ("dark", "light"):
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )
        open_page(browser, live.base + path, ready)
        assert browser.execute_script(f"return matchMedia('(prefers-color-scheme: {scheme})').matches")
        page_bg, page_fg = colors(browser, "body")
        header_bg, header_fg = colors(browser, "header.top")
        if scheme == "dark":
            assert page_bg < 0.05 and header_bg < 0.05, (page_bg, header_bg)
            assert page_fg > 0.6 and header_fg > 0.6, (page_fg, header_fg)
            for css in texts:
                assert colors(browser, css)[1] > 0.6, css
        else:
            assert page_bg > 0.9 and page_fg < 0.05
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert console_errors(browser) == []


@pytest.mark.parametrize("path", ["/", f"/slo/{SLO}", "/customers", "/api/v1/slos", "/static/common.js"])
def test_every_page_sends_the_security_headers(live: Live, path: str) -> None:
    with urllib.request.urlopen(live.base + path, timeout=10) as resp:
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"


def _open_waiting(live: Live) -> float:
    m = live.daemon.scrape()
    return m.get(("sloguard_http_open_connections", (("state", "waiting"),)), 0.0)


async def test_500_slow_connections_leave_metrics_health_and_the_ui_answering(
    live: Live, browser: WebDriver
) -> None:
    """Issue 13's hostile clients against the real daemon: 500 connections trickling request heads or
    idling after one request (reconnecting when closed) while Prometheus, the kubelet and a person with a
    browser use the same port. Nothing is timed: every one of their requests must be answered 200."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < SLOW + 300:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop, connecting = asyncio.Event(), asyncio.Semaphore(50)
    port = live.daemon.port
    clients = [
        asyncio.create_task(slow_client(port, i % 2 == 0, True, stop, connecting)) for i in range(SLOW)
    ]
    try:
        for _ in range(240):
            if _open_waiting(live) >= SLOW * 0.9:
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError(f"the daemon never held {SLOW} slow connections")
        for _ in range(3):
            for path in ("/metrics", "/healthz", "/readyz", "/", "/api/v1/slos", f"/slo/{SLO}"):
                r = await get(port, path)
                assert r.status == 200, (path, r.status, r.body[:200])
        open_page(browser, live.base + "/", "tr.slo")
        assert console_errors(browser) == []
    finally:
        stop.set()
        await asyncio.gather(*clients)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
