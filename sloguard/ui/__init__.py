"""The web UI of `sloguard run`: an SLO list, SLO and series detail pages, customers, and the JSON API
(v1) they read, all served read-only from the latest snapshot.

`api` turns a snapshot into JSON (pure functions); `routes` is the route table `HttpServer` mounts
(caching per snapshot, security headers, static assets from ``static/``). See docs/api.md.
"""
