# Two entry points for a fresh machine with Python >= 3.10:
#   make book   set up .venv (once) and build the HTML book into _build/html
#   make test   set up .venv (once) and run every test: pytest, then the chapters under nbval
#   make checkpoints   retrain the VQ-GAN checkpoints shipped in checkpoints/ (about 20 min on 2 cores)
#   make checkpoints-mnist   retrain the MNIST tokenizers shipped in checkpoints/ (about 15 min on 2 cores)
#   make student      the student edition: student/, the chapters with each solution replaced by a stub
#   make book-class   the class edition of the HTML, without solutions, into _build/class/html
#   make test-html    the built HTML (both editions) in a headless Chromium, offline; screenshots in _build/screenshots
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vqlearn-installed
SHELL := /bin/bash
# pip's log goes to a file, printed only when the install fails.
PIP_LOG := $(VENV)/pip.log
QUIET_PIP := > $(PIP_LOG) 2>&1 || { cat $(PIP_LOG); exit 1; }

.PHONY: setup book test test-unit test-book checkpoints checkpoints-mnist clean student book-class test-html

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

# Mutation testing of the core modules (README, "Mutation testing"); not part of `make test` or CI: it takes long.
# A fresh run each time. MODULE=quantize: that module's mutants only; JOBS: parallel workers (mutmut children).
.PHONY: mutation
JOBS ?= 2
mutation: $(STAMP)
	@$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install -q -r requirements-dev.txt $(QUIET_PIP)
	rm -rf mutants
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(JOBS) $(if $(MODULE),"vqlearn.$(MODULE).*")
	$(PY) mutation/score.py --list $(if $(MODULE),--module $(MODULE))

student: $(STAMP)
	$(PY) tools/student_edition.py --book book --out student

# Reuses `make book`'s execution cache (_build/.jupyter_cache): after `make book`, nothing is executed again.
book-class: $(STAMP)
	$(PY) tools/build_class.py

# Debian's chromium and its driver (apt, as root or with sudo) and selenium (pip, into .venv), each only when missing.
test-html: book book-class
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi
	@$(PY) -c "import selenium" 2>/dev/null || $(PY) -m pip install -q "selenium>=4.5,<5" $(QUIET_PIP)
	$(PY) -m pytest -p no:cacheprovider -o addopts="" browser_tests/test_html.py
