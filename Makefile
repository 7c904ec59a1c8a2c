# One entry point for people and CI. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

# Debian packages the suite runs for real: promtool (`prometheus`) and amtool (`prometheus-alertmanager`).
SYSTEM_TOOLS = promtool:prometheus amtool:prometheus-alertmanager chromium:chromium chromedriver:chromium-driver

.PHONY: help setup system-deps node-deps lint check test fuzz bench bench-daemon bench-checkpoint bench-cardinality bench-scale bench-merge-parts bench-ui soak run clean screenshots

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the pinned dependencies (constraints.txt)

# Installs missing Debian packages when running as root (as CI does); otherwise names them.
system-deps: ## install promtool, amtool, chromium and chromedriver with apt-get when root; otherwise name the packages
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  tool=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$tool >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "make test needs Debian packages:$$missing -- run: sudo apt-get install --no-install-recommends$$missing"; exit 1; \
	  fi; \
	fi

# deploy/grafana's type checker (tsc + @grafana/schema, pinned in package-lock.json); reinstalled when the lock changes.
NODE_DEPS = deploy/grafana/node_modules/.installed-stamp
$(NODE_DEPS): deploy/grafana/package.json deploy/grafana/package-lock.json
	npm ci --prefix deploy/grafana --no-audit --no-fund
	touch $(NODE_DEPS)

node-deps: $(NODE_DEPS) ## npm ci the dashboards' type checker (deploy/grafana)

lint: setup ## ruff check, ruff format --check, mypy --strict
	$(VENV)/bin/ruff check sloguard tests benchmarks
	$(VENV)/bin/ruff format --check sloguard tests benchmarks
	$(VENV)/bin/mypy

# Two workers (pytest-xdist): most of the suite's wall time is e2e tests waiting on real processes
# (brokers, daemons, Prometheus), so two workers on a 2-core box cut it by about a quarter; each worker
# starts its own session fixtures on free ports. worksteal: the long e2e tests come first and a worker
# that runs dry takes queued tests from the other.
test: lint system-deps node-deps ## set up from scratch and pass lint + the whole suite (CI runs this)
	$(VENV)/bin/pytest -q -n 2 --dist worksteal

# The quick local loop: lint and the unit tests. No root, apt, npm, broker or promtool; a minute or two.
check: lint ## lint + the unit tests (no root, apt, npm or broker needed)
	$(VENV)/bin/pytest -q tests/unit

# The long seeded fuzz run (make test runs the same with 100k records).
fuzz: setup system-deps ## the long seeded fuzz run: 1M adversarial records
	SLOGUARD_FUZZ_RECORDS=1000000 $(VENV)/bin/pytest -q -s tests/fuzz -k seeded

screenshots: setup system-deps ## refresh the README's web UI pictures (docs/img/ui-*.png) from a live daemon
	SLOGUARD_WRITE_DOCS=1 $(VENV)/bin/pytest -q tests/e2e/test_ui.py

bench: setup ## replay vs mtail on a generated 1M-event log (docs/benchmarks.md)
	$(PY) -m benchmarks

bench-daemon: setup ## Kafka -> metrics throughput, freshness, exposition, memory
	$(PY) -m benchmarks.daemon

bench-checkpoint: setup ## checkpoint size, write and restore time
	$(PY) -m benchmarks.checkpoint

bench-cardinality: setup ## sloguard run at 1k..100k customer series (SIZES=1k,10k to pick), then 1M distinct ids
	$(PY) -m benchmarks.cardinality sweep $(if $(SIZES),--sizes $(SIZES))
	$(PY) -m benchmarks.cardinality attack

bench-scale: setup ## the two stages as processes vs one sloguard run: CPU per event, partials, freshness, 1 vs 2 (QUICK=1)
	$(PY) -m benchmarks.scale $(if $(QUICK),--quick)

bench-merge-parts: setup ## stage 2's parts in-process on real partial records: cold, then warm
	$(PY) -m benchmarks.merge_parts

bench-ui: setup ## web UI API at 100k series: ms per request (first after a tick, warm), /metrics under API load
	$(PY) -m benchmarks.ui

soak: setup ## 10 minutes at 80 % of capacity: RSS, lag and tick duration flat?
	$(PY) -m benchmarks.soak

run: setup ## set up and run the daemon on an embedded default (broker, traffic, /metrics)
	$(PY) -m sloguard.demo

clean: ## remove .venv and the tool caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Every target with its `## ` description (not the default goal: plain `make` still only sets up).
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'
