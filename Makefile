# `make demo` and `make test` both set up .venv (idempotent) and then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.grokpath-installed
CORES ?= 2
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo tiny readme-figures test test-fast test-slurm lint mutation slurm-up slurm-down report clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	# torch==2.13.0 resolves to the CPU wheel on this disk; the lock pins everything else.
	$(PY) -m pip install -q -c requirements.lock torch==2.13.0
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

demo: setup
	$(OFFLINE) snakemake --cores $(CORES) --configfile config/config.yaml

# A first look in a couple of minutes: the tiny test config (tests/configs/tiny.yaml, run `tiny`)
# end to end, every rule and figure, into results/tiny/. Not the quick lab of `make demo`: its
# numbers mean nothing, it only shows what a run writes.
tiny: setup
	$(OFFLINE) snakemake --cores $(CORES) --configfile tests/configs/tiny.yaml

# The README's images (docs/img/, never edited by hand): Fig. 1, Fig. 4 and the monitor figure of
# a finished run, downscaled to 800 px wide, and docs/img/SOURCE.md naming the run, its config and
# commit (from its versions.json). RUN is the run's folder; the default is the full lab's first seed.
RUN ?= results/lab-full/seed20261127
readme-figures: setup  # RUN=results/lab-quick for the quick lab
	$(PY) -m grokpath.figures.readme_images $(RUN) --out docs/img

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

# Mutation testing (mutmut; pyproject.toml [tool.mutmut]) of the modules behind the paper's numbers
# against their fast unit tests, then the kill rate per module and overall. Not part of `make test`
# or CI: hours on 2 cores. Resumes where an interrupted run stopped (results in mutants/).
# MUTANTS limits the run to some mutant names (globs), e.g. MUTANTS='grokpath.loss.baselines*'.
mutation: setup
	OMP_NUM_THREADS=1 $(OFFLINE) $(VENV)/bin/mutmut run --max-children $(CORES) $(MUTANTS)
	$(PY) tests/mutation_report.py

# A one-node SLURM on this machine (root; installs Debian's slurm packages if missing).
slurm-up:
	tests/slurm/local-cluster.sh up

slurm-down:
	tests/slurm/local-cluster.sh down

clean:
	rm -rf results .snakemake mutants
