# Two commands on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-compiled uninstall-compiled run test lint bench

$(BIN)/conduit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/conduit

# Optional: the HL7 v2 -> FHIR converter compiled with mypyc (needs gcc and the Python headers),
# installed beside the venv's packages, never beside the sources (scripts/build_compiled.py).
install-compiled: install
	$(BIN)/python scripts/build_compiled.py

uninstall-compiled:
	$(BIN)/python scripts/build_compiled.py --remove

run: install
	$(BIN)/conduit run channels/

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
