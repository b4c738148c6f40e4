# The whole set-up: `make demo`, `make test` and `make docs`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format docs

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -e ".[numeric,dev,docs]"
	# Byte-compile the dependencies once, on every core. Where PYTHONDONTWRITEBYTECODE
	# is set, Python never writes .pyc files itself, so every process (test workers,
	# CLI subprocesses, notebook kernels) would recompile SymPy and JAX from source:
	# 2.5 s per `import sympy` instead of 0.4 s. A file that does not compile under
	# this Python (a test file of torch for 3.12) is skipped, as pip skips it.
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bea demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The documentation site, into site/ (open site/index.html); strict: a warning fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .
