# sigfilter — the README's two commands: `make run` and `make test`.
# Both install what is missing (Debian packages, the .venv) and are safe to re-run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the project needs: Python to build the venv (gcc and libmilter-dev
# for pymilter), redis-server and postfix for the tests and the local stack (started
# and stopped by the tests and `make run`; the system services are never used), swaks.
# chromium: the preview page's browser tests (driven by Playwright, headless); prometheus:
# its promtool checks the alert rules and the dashboard's queries (the service is not used).
APT_PACKAGES := python3 python3-venv python3-dev gcc redis-server postfix libmilter-dev swaks altermime openssl chromium prometheus
# Installed without their Recommends: chromium's are desktop services, prometheus's is
# node-exporter (another daemon on every address); the tests need none of them. The
# prometheus service Debian starts (:9090 on every address) is stopped and disabled
# when this installs it: the tests use only promtool.
APT_NO_RECOMMENDS := chromium prometheus

.PHONY: run stop test test-under-load lint bench fuzz deps clean

deps: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | $(SUDO) debconf-set-selections; \
	  lean=""; full=""; for p in $$missing; do \
	    case " $(APT_NO_RECOMMENDS) " in *" $$p "*) lean="$$lean $$p";; *) full="$$full $$p";; esac; done; \
	  $(SUDO) apt-get update -q && \
	  { [ -z "$$full" ] || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$full; } && \
	  { [ -z "$$lean" ] || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$lean; } && \
	  case "$$lean " in *" prometheus "*) [ ! -d /run/systemd/system ] || \
	    $(SUDO) systemctl disable --now prometheus || true;; esac; fi
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The whole stack on loopback: Postfix :2525 -> milter -> Postfix -> sink :2526.
run: $(STAMP)
	@mkdir -p run
	@for m in examples/messages/*.eml; do \
	  $(BIN)/sigfilter preview --catalog examples/catalog --sender avery.quill@example.com "$$m" -o "run/preview-$$(basename $$m)" 2>/dev/null || exit 1; \
	done
	@echo "previews of examples/messages/ are in run/preview-*.eml"
	$(BIN)/python tests/harness/devstack.py up

stop:
	@$(BIN)/python tests/harness/devstack.py down

lint: $(STAMP)
	$(BIN)/ruff check filter tests
	$(BIN)/ruff format --check filter tests
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest

# The suite with every core kept busy (LOAD spinning shell loops, one per core by
# default): a test that fails here asserts speed, not behaviour. The loops are stopped
# by process id however pytest ends.
LOAD ?= $(shell nproc)
test-under-load: $(STAMP) lint
	@pids=""; trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq $(LOAD)); do (while :; do :; done) & pids="$$pids $$!"; done; \
	echo "$(LOAD) busy loops running (pids$$pids)"; \
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python tests/bench/bench_engine.py
	$(BIN)/python tests/bench/bench_engine_parts.py
	$(BIN)/python tests/bench/bench_placement.py
	$(BIN)/python tests/bench/bench_hostile.py
	$(BIN)/python tests/bench/bench_serving.py
	$(BIN)/python tests/bench/bench_identity.py
	$(BIN)/python tests/bench/bench_metrics.py
	$(BIN)/python tests/bench/bench_stack.py
	$(BIN)/python tests/bench/bench_dkim.py
	$(BIN)/python tests/bench/bench_tnef.py
	$(BIN)/python tests/bench/bench_sync.py
	$(BIN)/python tests/bench/bench_preview.py
	$(BIN)/python tests/bench/bench_memory.py

# Coverage-guided fuzzing (atheris) of the scanner, HTML placement and engine: not part
# of `make test` (which runs a short seeded run and the hypothesis fuzz tests). The
# corpus grows in .fuzz-corpus/; a crash is written as fuzz-crashes/crash-<sha1>: copy
# it to tests/fuzz/crashes/ (replayed by the tests) and fix it.
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	@mkdir -p .fuzz-corpus fuzz-crashes
	$(BIN)/python tests/fuzz/fuzz_atheris.py -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	  -timeout=10 -rss_limit_mb=2048 -artifact_prefix=fuzz-crashes/ .fuzz-corpus
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -q -p no:cacheprovider tests/fuzz/test_fuzz_hypothesis.py

clean:
	rm -rf .fuzz-corpus $(VENV) run build *.egg-info filter/*.egg-info
