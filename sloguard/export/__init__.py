"""Export: snapshot → Prometheus text exposition, and the HTTP endpoints (http.py).

The only home of prometheus_client. The daemon renders once per tick and serves the cached bytes. The
data model is model.py, the renderer text.py; each source of metrics has its module (slo.py, latency.py,
self_metrics.py, sloth.py), and collector.py puts them together.
"""

from sloguard.export.collector import Exposition, SnapshotCollector
from sloguard.export.http import HttpServer
from sloguard.export.text import CONTENT_TYPE, render

__all__ = ["CONTENT_TYPE", "Exposition", "HttpServer", "SnapshotCollector", "render"]
