# copier-lightning: the two commands in README.md.
#   make demo  - create .venv, render a project with the defaults (no git repository: it lies inside this
#                one), train it on synthetic data, show its metrics and the run directory's absolute path
#   make test  - the whole test suite (what .ci/run runs)
#   make bench - time each task's default `fit` and print its metric per epoch
#   make docs  - serve the template's documentation site at http://127.0.0.1:8000 (mkdocs.yml)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := build/demo

.PHONY: demo test lint bench docs clean

$(BIN)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(BIN)/.installed
	rm -rf $(DEMO)
	$(BIN)/copier copy --trust --defaults --vcs-ref HEAD --quiet --skip-tasks . $(DEMO)
	$(BIN)/pip install --quiet --no-deps -e $(DEMO)
	cd $(DEMO) && ../../$(BIN)/vision_project fit --output_dir $(CURDIR)/$(DEMO)/runs

test: $(BIN)/.installed /usr/bin/chromium lint
	$(BIN)/pytest --numprocesses auto --maxprocesses 4 --dist loadgroup

lint: $(BIN)/.installed
	$(BIN)/ruff check template/src tests scripts hooks benchmarks
	$(BIN)/ruff format --check template/src tests scripts hooks benchmarks
	$(BIN)/mypy

# Times `fit` with no arguments for each task and prints the figures (not part of `test`).
bench: $(BIN)/.installed
	$(BIN)/python benchmarks/default_fit.py

# The template's site, rebuilt on every edit; its question pages are generated (scripts/docs_hooks.py).
docs: $(BIN)/.installed
	$(BIN)/mkdocs serve

# The browser the page and documentation tests drive (Playwright's own download is not reachable).
/usr/bin/chromium:
	apt-get install --yes --quiet --no-install-recommends chromium || \
		(apt-get update --quiet && apt-get install --yes --quiet --no-install-recommends chromium)

clean:
	rm -rf $(VENV) build
