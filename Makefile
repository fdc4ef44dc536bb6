# Two entry points for a fresh machine with Python >= 3.10:
#   make book   set up .venv (once) and build the HTML book into _build/html
#   make test   set up .venv (once) and run every test: pytest, then the chapters under nbval
#   make checkpoints   retrain the VQ-GAN checkpoints shipped in checkpoints/ (about 20 min on 2 cores)
#   make checkpoints-mnist   retrain the MNIST tokenizers shipped in checkpoints/ (about 15 min on 2 cores)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vqlearn-installed
SHELL := /bin/bash
# pip's log goes to a file, printed only when the install fails.
PIP_LOG := $(VENV)/pip.log
QUIET_PIP := > $(PIP_LOG) 2>&1 || { cat $(PIP_LOG); exit 1; }

.PHONY: setup book test test-unit test-book checkpoints checkpoints-mnist clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt $(QUIET_PIP)
	$(PY) -m pip install -q --no-deps -e . $(QUIET_PIP)
	$(PY) -c "import vqlearn, torch, torchvision, lpips" && touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going

test: test-unit test-book

test-unit: $(STAMP)
	$(PY) -m pytest tests
	$(PY) -m pytest -m slow tests

test-book: $(STAMP)
	@if ls book/*.ipynb >/dev/null 2>&1; then \
		$(PY) -m pytest --nbval-lax --nbval-current-env book/ ; \
	else echo "no chapters yet: nothing for nbval to run"; fi

checkpoints: $(STAMP)
	$(PY) checkpoints/make_shipped.py

checkpoints-mnist: $(STAMP)
	$(PY) checkpoints/make_shipped_mnist.py

clean:
	rm -rf _build
