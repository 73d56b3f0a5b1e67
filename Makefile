# One entry point for set-up, the app, the tests and the committed checkpoints.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data

.PHONY: setup node browser app demo test lint format checkpoints bench clean

# The virtual environment, rebuilt when requirements.txt changes.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

# Debian's packages behind the tests and tools that are not Python, installed with apt-get when missing
# (as root, or with password-less sudo): `node` brings nodejs, which runs the app's JavaScript against
# torch (tests/services/test_live_views.py, tests/js), and npm, which installs the JavaScript linter;
# `browser` adds chromium for the end-to-end tests (tests/e2e), never `playwright install`. Where they
# cannot be installed this says why, and those tests then fail under CI and are skipped elsewhere.
CHROMIUM ?= /usr/bin/chromium
APT_INSTALL = if [ -z "$$PKGS" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make $@: missing$$PKGS and there is no apt-get: install them by hand."; exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=; \
	elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "make $@: missing$$PKGS; run as root: apt-get install$$PKGS"; exit 0; fi; \
	echo "make $@: installing$$PKGS with apt-get"; \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$PKGS </dev/null >/dev/null
node:
	@PKGS=; command -v node >/dev/null 2>&1 || PKGS=" nodejs"; command -v npm >/dev/null 2>&1 || PKGS="$$PKGS npm"; \
	$(APT_INSTALL) && command -v node >/dev/null && command -v npm >/dev/null

browser: node
	@PKGS=; [ -x "$(CHROMIUM)" ] || PKGS=" chromium"; $(APT_INSTALL) && test -x "$(CHROMIUM)"

# The JavaScript linter, pinned in package.json and package-lock.json, installed here (never globally);
# reinstalled when the lock file changes.
node_modules/.installed: package.json package-lock.json | node
	@command -v npm >/dev/null 2>&1 || { echo "make: npm is missing (make node installs Debian's npm, as root)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

app: setup
	$(PY) -m streamlit run app.py

# Train a small moons VAE end to end and evaluate it (about a minute on 2 cores).
demo: setup
	$(PY) -m vae.train --dataset moons --epochs 10 --latent-dim 8 --hidden 512,256 --out runs/demo-moons.safetensors --overwrite
	$(PY) -m vae.evaluate runs/demo-moons.safetensors --iwae-k 1000

test: lint browser
	$(PY) -m pytest

lint: setup node_modules/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	node_modules/.bin/eslint .

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Rebuild every committed checkpoint (MNIST ones need the MNIST files under $(DATA)).
checkpoints: setup
	DATA=$(DATA) PY=$(PY) bash scripts/make_checkpoints.sh

bench: setup
	$(PY) benchmarks/train_speed.py --data-dir $(DATA)

clean:
	rm -rf runs .pytest_cache .ruff_cache node_modules
