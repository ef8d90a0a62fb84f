# The two set-up commands of the README, and the few that support them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVICES := $(BIN)/python tools/services.py

.PHONY: install run test check bench services-up services-down clean

$(BIN)/yaosu: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/yaosu

# Embedded default: SQLite under var/, demo data loaded once, API on http://127.0.0.1:8000
run: install
	$(BIN)/yaosu demo
	$(BIN)/yaosu serve --host 127.0.0.1 --port 8000

# The layers and the code first, then the whole suite against real services, which it starts and stops itself.
test: check
	$(SERVICES) up
	set -a && . var/services.env && set +a && $(BIN)/pytest; status=$$?; \
	$(SERVICES) down; exit $$status

check: install
	$(BIN)/lint-imports
	$(BIN)/ruff check yaosu api consumers projections infra domain tests tools bench

# Every speed figure, the median of 3, each beside what it is compared with (bench/run.py), on real
# PostgreSQL restarted with fsync on and Kafka; the README's performance table is rewritten from it.
bench: install
	$(SERVICES) up
	YAOSU_PG_FSYNC=on $(SERVICES) restart postgres
	set -a && . var/services.env && set +a && $(BIN)/python -m bench.run

services-up: install
	$(SERVICES) up

services-down:
	$(SERVICES) down

clean: services-down
	rm -rf var $(VENV)
