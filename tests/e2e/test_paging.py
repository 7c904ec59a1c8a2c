"""End to end paging: broker -> daemon -> Prometheus (generated rules) -> Alertmanager -> webhook.

Steady traffic first, then an outage of ``POST /v1/checkout``: no page before the outage, and a page
for ``SloguardErrorBudgetBurn`` (severity=page, 1h/5m) at the webhook soon after it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import pytest

from sloguard.broker import LocalBroker, free_port
from sloguard.loadgen import run_loadgen

pytestmark = pytest.mark.kafka

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

TOPIC = "requests"
SLO = "checkout-availability"
ENDPOINT = "POST /v1/checkout"
RATE = 2000.0
INCIDENT_AT_S = 20.0
#: Allowed time from the start of the outage to the page at the webhook. A fresh daemon's 1h window holds
#: only the data since it started, so 14.4x is crossed as soon as the first fine bucket with the outage
#: closes; then tick 1 s + scrape 1 s + eval 1 s + group_wait 1 s + resend 2 s, and generous slack.
DETECTION_LIMIT_S = 60.0
FINE_BUCKET_S = 10

SLOS = f"""\
apiVersion: sloguard/v1
slos:
  - name: {SLO}
    service: checkout
    objective: 99.9
    sli: {{type: availability}}
    window: 30d
    group_by: [endpoint]
"""


# -- processes ------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def tail(self, n: int = 3000) -> str:
        self.log.flush()
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"


@dataclass
class Procs:
    """Every process the test starts; `stop_all` ends them (SIGTERM, then SIGKILL after a bound)."""

    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> Proc:
        log_path = log_dir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed in stop_all()
        try:
            popen = subprocess.Popen(
                args,
                cwd=log_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            log.close()
            raise
        proc = Proc(name, popen, log_path, log)
        self.started.append(proc)
        return proc

    def stop_all(self, timeout_s: float = 10.0) -> None:
        for proc in reversed(self.started):
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(timeout=timeout_s)
            proc.log.close()
        self.started.clear()

    def close(self) -> None:
        self.stop_all()


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.stop_all()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_ready(proc: Proc, url: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"{proc.name} exited with code {proc.popen.returncode}:\n{proc.tail()}")
        if http_ok(url):
            return
        time.sleep(0.1)
    pytest.fail(f"{proc.name} not ready at {url} within {limit_s:g} s:\n{proc.tail()}")


# -- webhook receiver -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    at: float  # time.monotonic() on arrival
    path: str
    body: dict[str, Any]


class Webhook:
    """An HTTP server in a thread recording every POSTed JSON body with its arrival time."""

    def __init__(self) -> None:
        self.received: list[Notification] = []
        self._lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.monotonic()
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(data)
                except ValueError:
                    body = {"unparsed": data.decode(errors="replace")}
                with webhook._lock:
                    webhook.received.append(Notification(at, self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    def snapshot(self) -> list[Notification]:
        with self._lock:
            return list(self.received)

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# -- load generator in a thread -------------------------------------------------------------------------


class Traffic:
    """`run_loadgen` on its own event loop in a thread; `stop()` cancels it and joins."""

    def __init__(self, bootstrap: str, duration_s: float) -> None:
        self.error: BaseException | None = None
        self.started_at: float | None = None  # time.monotonic() right before run_loadgen is called
        self._bootstrap = bootstrap
        self._duration_s = duration_s
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[Any] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            self.error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        self._task = asyncio.current_task()
        self.started_at = time.monotonic()
        self._ready.set()
        await run_loadgen(
            self._bootstrap,
            TOPIC,
            rate=RATE,
            duration_s=self._duration_s,
            scenario="outage",
            service="checkout",
            endpoint=ENDPOINT,
            incident_at_s=INCIDENT_AT_S,
            incident_for_s=600,
        )

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop may have closed meanwhile
                if self._task is not None:
                    self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(timeout=15)


# -- configs ----------------------------------------------------------------------------------------------


def alertmanager_config(webhook_port: int) -> str:
    base = f"http://127.0.0.1:{webhook_port}"
    return f"""\
route:
  receiver: blackhole
  group_by: [alertname, slo]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="page"']
      receiver: page
    - matchers: ['severity="ticket"']
      receiver: ticket
receivers:
  - name: blackhole
  - name: page
    webhook_configs:
      - url: {base}/page
        send_resolved: true
  - name: ticket
    webhook_configs:
      - url: {base}/ticket
        send_resolved: true
"""


def prometheus_config(daemon_port: int, am_port: int, rules: Path) -> str:
    return f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{am_port}']
scrape_configs:
  - job_name: sloguard
    static_configs:
      - targets: ['127.0.0.1:{daemon_port}']
"""


def is_page(n: Notification) -> bool:
    return n.path == "/page"


def matching_alert(n: Notification) -> dict[str, Any] | None:
    for alert in n.body.get("alerts", []):
        labels = alert.get("labels", {})
        if (
            alert.get("status") == "firing"
            and labels.get("alertname") == "SloguardErrorBudgetBurn"
            and labels.get("slo") == SLO
            and labels.get("severity") == "page"
            and labels.get("endpoint") == ENDPOINT
            and labels.get("long_window") == "1h"
            and labels.get("short_window") == "5m"
        ):
            return dict(alert)
    return None


# -- the test ---------------------------------------------------------------------------------------------


def test_outage_pages_through_prometheus_and_alertmanager(tmp_path: Path, procs: Procs) -> None:
    for binary in (PROMETHEUS, ALERTMANAGER):
        assert shutil.which(binary), (
            f"{binary} is needed (Debian packages prometheus, prometheus-alertmanager)"
        )
    test_start = time.monotonic()

    slo_file = tmp_path / "slos.yaml"
    slo_file.write_text(SLOS)
    rules = tmp_path / "rules.yml"
    res = subprocess.run(
        [sys.executable, "-m", "sloguard", "rules", str(slo_file), "-o", str(rules)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr.decode()
    assert "SloguardErrorBudgetBurn" in rules.read_text()

    # Exited in reverse: the processes stop first (the daemon commits while the broker is still up),
    # then the webhook, then the broker. The `procs` fixture stops them too if setup fails earlier.
    with LocalBroker(stop_timeout_s=3.0) as broker, Webhook() as webhook, contextlib.closing(procs):
        broker.create_topics([TOPIC], partitions=3)

        daemon_port = free_port()
        daemon = procs.start(
            "sloguard",
            [
                sys.executable,
                "-m",
                "sloguard",
                "run",
                "--config",
                str(slo_file),
                "--listen",
                f"127.0.0.1:{daemon_port}",
                "--tick-seconds",
                "1",
            ],
            tmp_path,
            env={
                **os.environ,
                "SLOGUARD_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
                "SLOGUARD_KAFKA__TOPICS": TOPIC,
                "SLOGUARD_KAFKA__GROUP_ID": "sloguard-e2e-paging",
                "SLOGUARD_LOG_FORMAT": "json",
            },
        )

        am_dir = tmp_path / "alertmanager"
        am_dir.mkdir()
        am_yml = tmp_path / "am.yml"
        am_yml.write_text(alertmanager_config(webhook.port))
        am_port = free_port()
        am = procs.start(
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={am_yml}",
                f"--storage.path={am_dir}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path,
        )

        prom_dir = tmp_path / "prometheus"
        prom_dir.mkdir()
        prom_yml = tmp_path / "prom.yml"
        prom_yml.write_text(prometheus_config(daemon_port, am_port, rules))
        prom_port = free_port()
        prom = procs.start(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={prom_yml}",
                f"--storage.tsdb.path={prom_dir}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--rules.alert.resend-delay=2s",
            ],
            tmp_path,
        )

        wait_ready(daemon, f"http://127.0.0.1:{daemon_port}/readyz")
        wait_ready(am, f"http://127.0.0.1:{am_port}/-/ready")
        wait_ready(prom, f"http://127.0.0.1:{prom_port}/-/ready")

        # Start the traffic just after a fine-bucket boundary: the first complete bucket then holds ~10 s
        # of steady traffic, not a handful of events whose one background 5xx could look like a burn.
        time.sleep((FINE_BUCKET_S - time.time() % FINE_BUCKET_S + 0.2) % FINE_BUCKET_S)
        traffic = Traffic(broker.bootstrap, duration_s=INCIDENT_AT_S + DETECTION_LIMIT_S + 5)
        traffic.start()
        try:
            assert traffic.started_at is not None
            incident_at = traffic.started_at + INCIDENT_AT_S
            deadline = incident_at + DETECTION_LIMIT_S
            page: Notification | None = None
            while time.monotonic() < deadline and page is None:
                for name, p in (("sloguard", daemon), ("alertmanager", am), ("prometheus", prom)):
                    assert p.popen.poll() is None, f"{name} exited:\n{p.tail()}"
                assert traffic.error is None, f"loadgen failed: {traffic.error!r}"
                early = [n for n in webhook.snapshot() if is_page(n) and n.at < incident_at]
                assert not early, f"paged before the outage: {early[0].body}"
                page = next(
                    (n for n in webhook.snapshot() if n.at >= incident_at and matching_alert(n)), None
                )
                time.sleep(0.2)
        finally:
            traffic.stop()
        assert traffic.error is None, f"loadgen failed: {traffic.error!r}"

        received = webhook.snapshot()
        early = [n for n in received if is_page(n) and n.at < incident_at]
        assert not early, f"paged before the outage: {early[0].body}"
        assert page is not None, (
            f"no page within {DETECTION_LIMIT_S:g} s of the outage; webhook got "
            f"{[(n.path, n.body.get('commonLabels')) for n in received]}\n"
            f"prometheus alerts: {fetch(f'http://127.0.0.1:{prom_port}/api/v1/alerts')}\n"
            f"sloguard log:\n{daemon.tail()}"
        )
        alert = matching_alert(page)
        assert alert is not None
        delay = page.at - incident_at
        print(
            f"\npage {alert['labels']} arrived {delay:.1f} s after the outage started "
            f"(test ran {time.monotonic() - test_start:.1f} s so far)"
        )
        assert 0 <= delay <= DETECTION_LIMIT_S


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode()[:3000])
    except (OSError, urllib.error.URLError) as exc:
        return f"({exc!r})"
