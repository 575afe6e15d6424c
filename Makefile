# sigfilter — the README's two commands: `make run` and `make test`.
# Both install what is missing (Debian packages, the .venv) and are safe to re-run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the project needs: Python to build the venv, redis-server for the
# serving-layer tests (started and stopped by the tests themselves).
APT_PACKAGES := python3 python3-venv python3-dev gcc redis-server

.PHONY: run test lint bench deps clean

deps: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; fi
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# For now: preview the example messages through the engine with the example catalog.
run: $(STAMP)
	@mkdir -p run
	@for m in examples/messages/*.eml; do \
	  echo "=== $$m"; \
	  $(BIN)/sigfilter preview --catalog examples/catalog --sender avery.quill@example.com "$$m" -o "run/$$(basename $$m)" || exit 1; \
	done
	@echo
	@echo "Rewritten messages are in run/. Try your own:"
	@echo "  $(BIN)/sigfilter preview --catalog examples/catalog --sender avery.quill@example.com --json MESSAGE.eml"

lint: $(STAMP)
	$(BIN)/ruff check filter tests
	$(BIN)/ruff format --check filter tests
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python tests/bench/bench_engine.py
	$(BIN)/python tests/bench/bench_serving.py

clean:
	rm -rf $(VENV) run build *.egg-info filter/*.egg-info
