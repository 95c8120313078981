# Two commands for a new user: `make demo` and `make test`.
# Both create .venv from Python 3.10 on first use (lava-nc does not import on 3.11).
PY310 := $(shell pyenv which python3.10 2>/dev/null || command -v python3.10 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench docs clean-venv

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PY310)" || { echo "error: Python 3.10 not found (install it, e.g. 'pyenv install 3.10')"; exit 2; }
	@test -x $(PY) || $(PY310) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neuro-deploy demo

test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

docs: $(STAMP)  # docs/cli.md from the command line's own help (tests/test_docs.py checks it)
	$(PY) -m neuro_deploy.cli.reference > docs/cli.md

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
