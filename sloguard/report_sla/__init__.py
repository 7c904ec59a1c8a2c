"""`sloguard report sla`: per-customer SLA attainment and credits from request logs (docs/sla.md).

- `cli`: the command's flags (light at import) and what it does;
- `run`: logs -> `core.sla` results, through the replay path's file source and decoder;
- `render`: results -> JSON document and CSV;
- `html`: the JSON document -> one self-contained HTML page.
"""
