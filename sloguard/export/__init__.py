"""Export: snapshot → Prometheus text exposition (collector.py) and the HTTP endpoints (http.py).

The only home of prometheus_client. The daemon renders once per tick and serves the cached bytes.
"""

from sloguard.export.collector import CONTENT_TYPE, Exposition, SnapshotCollector, render
from sloguard.export.http import HttpServer

__all__ = ["CONTENT_TYPE", "Exposition", "HttpServer", "SnapshotCollector", "render"]
