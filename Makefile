# `make demo` and `make test` both set up .venv (idempotent) and then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.grokpath-installed
CORES ?= 2
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo test test-fast test-slurm lint slurm-up slurm-down report clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	# torch==2.13.0 resolves to the CPU wheel on this disk; the lock pins everything else.
	$(PY) -m pip install -q -c requirements.lock torch==2.13.0
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

demo: setup
	$(OFFLINE) snakemake --cores $(CORES) --configfile config/config.yaml

# Everything CI runs: unit tests, the tiny DAG end to end (local, and through a real one-node SLURM
# that tests/slurm/local-cluster.sh installs and starts), determinism, partial reruns, faults,
# `snakemake --lint` and `snakefmt --check`. The slowest tests are listed at the end.
test: setup
	$(OFFLINE) $(PY) -m pytest -q --durations=15

# The same without the whole-workflow runs (pytest marker `slow`): a quick check while editing.
test-fast: setup
	$(OFFLINE) $(PY) -m pytest -q -m "not slow"

test-slurm: setup
	$(OFFLINE) $(PY) -m pytest -q -s tests/test_slurm.py

lint: setup
	snakemake --lint --configfile config/config.yaml
	snakemake --lint --configfile config/olmoe.yaml
	snakefmt --check Snakefile rules/

# A one-node SLURM on this machine (root; installs Debian's slurm packages if missing).
slurm-up:
	tests/slurm/local-cluster.sh up

slurm-down:
	tests/slurm/local-cluster.sh down

clean:
	rm -rf results .snakemake
