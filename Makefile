# Quick start: `make run` (set up, migrate, load the demo, serve web + worker + beat) and
# `make test`. Only Python 3.11+ is needed on the machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Port of `make run`'s web server: `make run PORT=8001`. Passed on as WEB_PORT (honcho sets
# PORT per process itself), from which SITE_URL follows unless SITE_URL is set.
PORT   ?= 8000


.PHONY: help install messages extract-messages migrate seed run web worker beat test lint format check clean

help:
	@echo "make run      set up, migrate, load the demo and serve web + worker + beat (PORT=8000)"
	@echo "make test     run the test suite (service tests need DATABASE_URL and REDIS_URL)"
	@echo "make lint     ruff check + format check + migrations in sync"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# Translations: the project's catalog (locale/<lang>/LC_MESSAGES/django.po) and the apps' own
# (<app>/locale/...) are committed; each .mo is built here with Babel (Python only; GNU gettext
# is not needed). New strings: `make extract-messages` (that one needs GNU gettext), translate
# them in the .po, commit it.
PO_FILES := $(wildcard locale/*/LC_MESSAGES/django.po */locale/*/LC_MESSAGES/django.po)
messages: $(PO_FILES:.po=.mo)

%/LC_MESSAGES/django.mo: %/LC_MESSAGES/django.po $(STAMP)
	$(BIN)/pybabel compile --statistics -l $(notdir $*) -i $< -o $@

extract-messages: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemessages -l ko --no-location \
	  --ignore=.venv --ignore=var --ignore=tests --ignore=benchmarks --ignore=fixtures \
	  --ignore=scripts --ignore=docs --ignore=plans --ignore=notifications --ignore=tracker
	# The apps' own catalogs (plans/locale, notifications/locale, tracker/locale).
	for app in tracker plans notifications; do \
	  (cd $$app && DJANGO_DEBUG=1 ../$(BIN)/python ../manage.py makemessages -l ko --no-location) || exit 1; \
	done

# Local development settings, written once: debug on and a random secret key. Real
# environment variables win over it; production sets its own environment instead.
.env:
	@printf '# Written by make for local development. Production sets real environment variables.\nDJANGO_DEBUG=1\nDJANGO_SECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
	@echo "Wrote .env for local development (DJANGO_DEBUG=1, a random DJANGO_SECRET_KEY)."

migrate: install messages .env
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	WEB_PORT=$(PORT) $(BIN)/python manage.py seed_demo

run: seed
	@echo "Serving http://127.0.0.1:$(PORT)/ (the workspace; the admin at /admin/) with Celery workers and beat. Ctrl-C stops all."
	WEB_PORT=$(PORT) $(BIN)/honcho start -f Procfile

# In parallel: TEST_WORKERS processes (pytest-xdist; auto = one per core). Tests that start
# processes on the shared services run in one process (xdist groups, tests/conftest.py).
# `make test TEST_WORKERS=0` runs everything in one process.
TEST_WORKERS ?= auto
test: install messages
	$(BIN)/pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup) --durations=15

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var/ .pytest_cache .ruff_cache
