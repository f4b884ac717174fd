# ferlens: two commands do all set-up on a fresh machine.
#   make run   -> creates/updates .venv, launches the dashboard on the embedded default model
#   make test  -> creates/updates .venv (+ chromium and postgresql when root), runs the test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PORT    ?= 8501
PYTEST_ARGS ?=
# test workers (pytest-xdist): one per core, at most 4; JOBS=0 runs in one process
JOBS    ?= auto

.PHONY: run test venv browser postgres lint bench clean

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

venv: $(STAMP)

# Debian chromium + chromedriver for the browser end-to-end tests (skipped cleanly when absent and not in CI).
browser:
	@if ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium/chromedriver missing: run 'sudo apt-get install chromium chromium-driver'"; fi; fi

# Debian's PostgreSQL server binaries for the verdict store's PostgreSQL tests, which start their own throw-away
# server (tests/harness/postgres.py) and skip cleanly when the binaries are absent.
postgres:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "postgresql missing: run 'sudo apt-get install postgresql' to run the PostgreSQL verdict-store tests"; fi; fi

run: $(STAMP)
	$(BIN)/streamlit run dashboard/app.py --server.port $(PORT)

test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -n $(JOBS) --maxprocesses 4 $(PYTEST_ARGS)

# Known vulnerabilities in the installed packages (pip-audit, PyPI's advisory data). An unreachable service
# prints "audit skipped: <reason>" and exits 0; an unaccepted vulnerability exits 1 (see .ci/audit.py).
.PHONY: audit
audit: $(STAMP)
	$(PY) .ci/audit.py --venv $(VENV)

lint: $(STAMP)
	$(BIN)/python -m ruff check . && $(BIN)/python -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
