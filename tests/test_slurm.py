"""profiles/slurm on a real SLURM: the tiny config through sbatch on a one-node cluster.

The run stops before the analysis rules (`--until` tiny_runs.UNTIL_CORE: every GPU rule and every
table the analysis reads; the stats and figure jobs would go through sbatch the same way and cost
about three more polling rounds each), and its tables must equal a local run's.

tests/slurm/local-cluster.sh brings up slurmctld + slurmd on 127.0.0.1 (installing Debian's
packages if missing); the run uses `--profile profiles/slurm --workflow-profile
profiles/slurm-local` (squeue status, short initial wait), under `timeout -s KILL`: a snakemake
whose status checks keep failing can loop forever and ignore SIGTERM. The test skips only where
SLURM cannot be installed (not root, no apt, packages unavailable); any other failure fails.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from test_localrules import local_and_all_rules
from tiny_runs import TINY, UNTIL_CORE, job_stats, parquet_tables, reference_run, table_differences
from workflow_utils import ROOT, snakemake, snakemake_command, snakemake_env

CLUSTER = ROOT / "tests" / "slurm" / "local-cluster.sh"
PROFILE = ROOT / "profiles" / "slurm"
OVERLAY = ROOT / "profiles" / "slurm-local"
GPU_RULES = ["pretrain_lab", "sample_loss", "extract_pathways", "instruction_tune", "evaluate", "contamination"]
CANNOT_INSTALL = 3  # local-cluster.sh's exit status where SLURM cannot be installed
RUN_LIMIT_S = 1500  # hard limit (SIGKILL) for the whole SLURM run


def load(profile: Path) -> dict:
    return yaml.safe_load((profile / "config.yaml").read_text())


# --- static checks of the profiles (no cluster needed) ---------------------------------------


def test_slurm_profile_asks_gpus_one_way_for_every_gpu_rule():
    profile = load(PROFILE)
    assert profile["executor"] == "slurm"
    assert "slurm_partition" in profile["default-resources"]
    resources = profile["set-resources"]
    assert sorted(resources) == sorted(GPU_RULES)
    for rule, values in resources.items():
        asks_gpu = "gpu" in values or "gpu_model" in values
        assert asks_gpu != ("gres" in values), f"{rule}: use gpu/gpu_model or gres, exactly one"
        assert values.get("gpu", 1) >= 1 and values["runtime"] > 0 and values["mem_mb"] > 0
        assert "slurm_partition" in values, f"{rule}: partition belongs in the profile"


def test_no_cluster_settings_in_config():
    keys = ("slurm_partition", "slurm_account", "partition", "gres", "gpu_model", "runtime", "mem_mb")
    for path in sorted((ROOT / "config").glob("*.yaml")):
        text = path.read_text()
        for key in keys:
            assert not re.search(rf"^\s*{key}\s*:", text, flags=re.M), f"{path.name} sets {key}"


def test_local_overlay_changes_only_memory_and_polling():
    profile, overlay = load(PROFILE), load(OVERLAY)
    assert overlay["slurm-status-command"] == "squeue"
    assert "slurm_account" not in str(overlay) and "executor" not in overlay
    assert sorted(overlay["set-resources"]) == sorted(profile["set-resources"])
    for rule, values in profile["set-resources"].items():
        local = dict(overlay["set-resources"][rule])
        assert local.pop("mem_mb") <= 4000
        assert local == {k: v for k, v in values.items() if k != "mem_mb"}, rule


def test_local_profile_parses_and_plans_the_tiny_dag(tmp_path):
    result = snakemake(tmp_path, TINY, "-n", "--profile", str(ROOT / "profiles" / "local"), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pretrain_lab" in job_stats(result.stdout)


def test_slurm_profile_plans_the_paper_dag_with_gpu_resources(tmp_path):
    result = snakemake(tmp_path, ROOT / "config" / "olmoe.yaml", "-n", "--profile", str(PROFILE), timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = result.stdout.split("\nrule ")
    loss_blocks = [b for b in blocks if b.startswith("sample_loss:")]
    assert len(loss_blocks) == 10
    for block in loss_blocks:
        resources = re.search(r"resources: (.*)", block).group(1)
        assert "slurm_partition=gpu" in resources and "gpu=1" in resources and "mem_mb=64000" in resources


# --- the real cluster ------------------------------------------------------------------------


# Session-wide: with the client installed but the controller down, every snakemake start waits
# 10 s (the SLURM executor plugin asks `scontrol show config` at import), so the cluster stays up
# until the last test of the session has run.
@pytest.fixture(scope="session")
def cluster():
    was_up = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True, text=True).returncode == 0
    start = time.monotonic()
    up = subprocess.run(["bash", str(CLUSTER), "up"], capture_output=True, text=True, timeout=900)
    if up.returncode == CANNOT_INSTALL:
        pytest.skip(f"SLURM cannot be installed on this machine: {up.stderr.strip().splitlines()[-1]}")
    assert up.returncode == 0, up.stderr[-3000:]
    print(f"\nlocal SLURM up in {time.monotonic() - start:.1f} s ({up.stderr.strip().splitlines()[-1]})")
    yield
    if not was_up:
        subprocess.run(["bash", str(CLUSTER), "down"], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm")
    command = [
        "timeout", "-s", "KILL", str(RUN_LIMIT_S),
        *snakemake_command(workdir, TINY, "--profile", str(PROFILE), "--workflow-profile", str(OVERLAY), "--until", *UNTIL_CORE),
    ]  # fmt: skip
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=snakemake_env())
    elapsed = time.monotonic() - start
    output = result.stdout + result.stderr
    assert result.returncode != -9 and result.returncode != 137, f"killed after {RUN_LIMIT_S} s:\n{output[-3000:]}"
    assert result.returncode == 0, output[-4000:]
    print(f"\ntiny config through SLURM: {elapsed:.0f} s")
    return workdir, output


def submitted(output: str) -> dict[str, str]:
    """SLURM job id -> rule, from snakemake's 'submitted with SLURM jobid' lines."""
    pattern = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)")
    jobs = {}
    for jobid, log in pattern.findall(output):
        rule = re.search(r"slurm_logs/rule_(\w+?)/", log).group(1)
        jobs[jobid] = rule
    return jobs


def slurm_jobs(jobids) -> dict[str, dict[str, str]]:
    """`scontrol show job` fields of finished jobs (the test cluster keeps them for an hour)."""
    out = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    jobs = {}
    for line in out.stdout.splitlines():
        fields = dict(token.split("=", 1) for token in line.split() if "=" in token)
        if fields.get("JobId") in jobids:
            jobs[fields["JobId"]] = fields
    assert sorted(jobs) == sorted(jobids), "SLURM forgot finished jobs: is MinJobAge long enough?"
    return jobs


@pytest.mark.slow
def test_every_job_went_through_sbatch(slurm_run):
    workdir, output = slurm_run
    planned = job_stats(output)
    planned.pop("all", None)  # a target without a command: nothing to submit
    # jobs that take seconds are `localrules` (tests/test_localrules.py): the submit host runs them
    declared, _ = local_and_all_rules(TINY)
    local = set(re.findall(r"^localrule (\w+):", output, flags=re.M)) - {"all"}
    assert local == set(planned) & declared, "localrules must run on the submit host, the rest via sbatch"
    jobs = submitted(output)
    by_rule: dict[str, int] = {}
    for rule in jobs.values():
        by_rule[rule] = by_rule.get(rule, 0) + 1
    assert by_rule == {rule: n for rule, n in planned.items() if rule not in declared}
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert sorted(p.stem for p in logs) == sorted(jobs)  # SLURM wrote one log per job
    for jobid, fields in slurm_jobs(jobs).items():
        rule = jobs[jobid]
        assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", (rule, fields)
        assert fields["Comment"].startswith(f"rule_{rule}")
        if rule in GPU_RULES:  # the profile's partition and GPU count reached sbatch
            assert fields["Partition"] == "gpu" and fields.get("TresPerJob") == "gres:gpu:1", (rule, fields)
        else:
            assert fields["Partition"] == "cpu" and "gpu" not in fields.get("TresPerJob", ""), (rule, fields)


@pytest.mark.slow
def test_slurm_results_equal_a_local_run(slurm_run, tmp_path_factory):
    workdir, _ = slurm_run
    local = reference_run(tmp_path_factory)
    assert "memorization/samples.parquet" in parquet_tables(workdir)
    assert table_differences(local, workdir, byte_identical=False, subset=True) == []
