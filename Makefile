# The two set-up commands of the README, and the few that support them.
PYTHON ?= python3
# `make run PORT=8001` when 8000 is taken; HOST stays loopback unless a tokens file is set (README, Security).
PORT ?= 8000
HOST ?= 127.0.0.1
# `make services-up CLUSTER=3`: Kafka as a cluster of three nodes (replicated topics) instead of one broker.
CLUSTER ?= 1
VENV := .venv
BIN := $(VENV)/bin
SERVICES := $(BIN)/python tools/services.py

.PHONY: help install run test check bench services-up services-down clean

help:  ## what each target does
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 24

$(BIN)/yaosu: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/yaosu  ## the virtualenv in .venv with the project and its test tools

# Embedded default: SQLite under var/, demo data loaded once, API on http://127.0.0.1:8000
run: install  ## the service on the embedded store with the demo loaded (PORT=8000 HOST=127.0.0.1)
	$(BIN)/yaosu demo
	$(BIN)/yaosu serve --host $(HOST) --port $(PORT)

# The layers and the code first, then the whole suite against real services, which it starts and stops itself.
# Two workers, a test file each at a time; a test that crashes PostgreSQL or Kafka crashes its own (tests/conftest.py).
test: check  ## the whole suite against a throwaway PostgreSQL and Kafka it starts and stops
	$(SERVICES) up
	set -a && . var/services.env && set +a && $(BIN)/pytest -n 2 --dist loadfile; status=$$?; \
	$(SERVICES) down; exit $$status

check: install  ## the import contract (layers) and ruff
	$(BIN)/lint-imports
	$(BIN)/ruff check yaosu api consumers projections service infra domain tests tools bench

# Every speed figure, the median of 3, each beside what it is compared with (bench/run.py), on real
# PostgreSQL restarted with fsync on and Kafka; the README's performance table is rewritten from it.
bench: install  ## every speed figure, medians of 3; rewrites the README's table
	$(SERVICES) up
	YAOSU_PG_FSYNC=on $(SERVICES) restart postgres
	set -a && . var/services.env && set +a && $(BIN)/python -m bench.run

services-up: install  ## a local PostgreSQL and Kafka (CLUSTER=3: three brokers), written to var/services.env
	$(SERVICES) up --cluster $(CLUSTER)

services-down:  ## stop them and delete their data
	$(SERVICES) down

clean: services-down  ## also var/ and the virtualenv
	rm -rf var $(VENV)
