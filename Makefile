# `make demo` and `make test` both set up .venv (idempotent) and then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.grokpath-installed
CORES ?= 2
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo test lint report clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	# torch==2.13.0 resolves to the CPU wheel on this disk; the lock pins everything else.
	$(PY) -m pip install -q -c requirements.lock torch==2.13.0
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

demo: setup
	$(OFFLINE) snakemake --cores $(CORES) --configfile config/config.yaml

test: setup
	$(OFFLINE) $(PY) -m pytest -q

lint: setup
	snakemake --lint --configfile config/config.yaml
	snakefmt --check Snakefile rules/

clean:
	rm -rf results .snakemake
