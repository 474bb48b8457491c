# The set-up and the gates in one place. `make check` is what the README's test command and CI
# (.ci/run) run: lint, format, strict types, then the default test tier.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PyTorch's CPU build; the default index would pull a multi-GB CUDA build on Linux.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH := $(shell grep '^torch==' constraints.txt)
STAMP := $(VENV)/.installed

.PHONY: check lint types test venv constraints

check: lint types test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

venv: $(STAMP)

# Creates the venv if missing; reinstalls whenever the ranges or the pins change. torch comes
# first so that resolving the rest finds it installed.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH) --index-url $(TORCH_INDEX)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# After an upgrade has passed `make check`: pin the venv's exact set (less the project itself).
constraints:
	{ echo "# The set tested together: \`pip install -c constraints.txt -e .\`. Written by \`make constraints\`."; \
	  $(BIN)/pip freeze --all --exclude-editable --exclude pip | sed -E 's/^(torch==[^+]*)\+.*/\1/'; \
	} > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt
