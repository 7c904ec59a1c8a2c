# One entry point for people and CI. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

# Debian packages the suite runs for real: promtool (`prometheus`) and amtool (`prometheus-alertmanager`).
SYSTEM_TOOLS = promtool:prometheus amtool:prometheus-alertmanager

.PHONY: setup system-deps node-deps lint test fuzz bench bench-daemon bench-checkpoint bench-cardinality soak run clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Installs missing Debian packages when running as root (as CI does); otherwise names them.
system-deps:
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

node-deps: $(NODE_DEPS)

lint: setup
	$(VENV)/bin/ruff check sloguard tests benchmarks
	$(VENV)/bin/ruff format --check sloguard tests benchmarks
	$(VENV)/bin/mypy

test: lint system-deps node-deps
	$(VENV)/bin/pytest -q

# The long seeded fuzz run (make test runs the same with 100k records).
fuzz: setup system-deps
	SLOGUARD_FUZZ_RECORDS=1000000 $(VENV)/bin/pytest -q -s tests/fuzz -k seeded

bench: setup
	$(PY) -m benchmarks

bench-daemon: setup
	$(PY) -m benchmarks.daemon

bench-checkpoint: setup
	$(PY) -m benchmarks.checkpoint

bench-cardinality: setup
	$(PY) -m benchmarks.cardinality

soak: setup
	$(PY) -m benchmarks.soak

run: setup
	$(PY) -m sloguard.demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
