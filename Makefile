# One command per task. `make run` serves the site; `make test` checks everything.
.DELETE_ON_ERROR:
PORT ?= 8000
PYTHON ?=
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install check lint format test-sqlite test-postgres superuser clean chromium \
	browser-tools lighthouse bench-tools

install: $(STAMP)

$(STAMP): pyproject.toml scripts/find-python
	@python="$$(PYTHON='$(PYTHON)' scripts/find-python)" || exit 1; \
	if ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
		|| ! $(PY) -m pip --version >/dev/null 2>&1; then \
		echo "Creating $(VENV) with $$python"; rm -rf $(VENV); "$$python" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# A local secret key, written once and git-ignored.
.secret_key: | $(STAMP)
	@$(PY) -c 'import secrets; print(secrets.token_urlsafe(64))' > $@
	@chmod 600 $@

run: install .secret_key
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_sample_data
	@# The full ICD-10-CM set, then every similar-codes list (the import rebuilds them
	@# once it commits): a minute or two once, then skipped in a second. --missing
	@# then lists any code still without one (a database imported before that); it
	@# reads nothing more when every code has a list.
	$(PY) manage.py import_icd10cm
	$(PY) manage.py import_icd10pcs
	$(PY) manage.py import_lay_terms
	$(PY) manage.py rebuild_similar_codes --missing
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "CareCodes is at http://127.0.0.1:$(PORT)/ (Ctrl-C stops it)"
	$(VENV)/bin/gunicorn carecodes.wsgi --bind 127.0.0.1:$(PORT) --workers 2 \
		--access-logfile -

superuser: install .secret_key
	$(PY) manage.py createsuperuser

# The checks need no database server: they run against the SQLite default.
check: install .secret_key
	env -u DATABASE_URL $(PY) manage.py check
	env -u DATABASE_URL $(PY) manage.py makemigrations --check --dry-run
	@echo "== Deployment check with production settings =="
	env -u DATABASE_URL HTTPS=true ALLOWED_HOSTS=carecodes.example \
		SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
		$(PY) manage.py check --deploy --fail-level WARNING

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/djhtml --check templates

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/djhtml templates

test-sqlite: install .secret_key
	@echo "== Tests on SQLite =="
	env -u DATABASE_URL $(PY) -m pytest

test-postgres: install .secret_key
	@scripts/test-postgres $(PY)

# $(call apt-install,PROGRAM,PACKAGE,USER): Debian's PACKAGE when PROGRAM (a name or a
# path) is missing; as root only, otherwise it says what to run.
define apt-install
	@if ! command -v $(1) >/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "Missing $(1), for $(3): run 'make $@' as root (apt-get install $(2))." >&2; \
			exit 1; \
		fi; \
		echo "Installing Debian's $(2) for $(3)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq $(2) >/dev/null \
			|| { apt-get update -qq && apt-get install -y -qq $(2) >/dev/null; } \
			|| { echo "Could not install $(2) with apt-get." >&2; exit 1; }; \
	fi
endef

# Browser tests drive Debian's Chromium (tests/browser/); Playwright never downloads one.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
chromium:
	$(call apt-install,$(CHROMIUM),chromium,the browser tests)

# The checkers the browser tests run: axe-core and the Nu HTML Checker (vnu.jar, run
# with Java), pinned in package-lock.json. --ignore-scripts: vnu-jar's install script
# would fetch a Java of its own; the machine's is used instead.
NODE_TOOLS := node_modules/.installed-stamp
browser-tools: chromium $(NODE_TOOLS)
	@command -v java >/dev/null || { echo "The HTML checker needs Java 11 or newer" \
		"(apt-get install default-jre-headless)." >&2; exit 1; }

$(NODE_TOOLS): package.json package-lock.json
	@command -v npm >/dev/null || { echo "The browser tests need npm (Node.js)" \
		"to install axe-core and vnu-jar." >&2; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

test: check lint browser-tools test-sqlite test-postgres

# Lighthouse scores for the code, policy and search pages (not part of `make test`).
lighthouse: install chromium
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix bench
	$(PY) bench/lighthouse.py

# wrk, which bench/load.py drives (Debian's package; not part of `make test`).
bench-tools:
	$(call apt-install,wrk,wrk,bench/load.py)

clean:
	rm -rf $(VENV) node_modules staticfiles .pytest_cache .ruff_cache
