"""Partial reruns: after one real run, a changed config value plans exactly the jobs it touches.

Each case writes a variant of the run's config and dry-runs Snakemake with its default rerun
triggers (mtime, params, input, code, software-env), then compares the planned jobs with the
expectation. Expectations marked EXPECTED (DESIGN) follow from how the DAG is built today, not
from the issue's wording; they say why. Analysis rules (rules/analysis.smk: stats, figures) may
always follow a change, since they read everything downstream.

Cases: the routing threshold and an lm-eval setting on the lab run (tests/configs/tiny.yaml);
an added checkpoint on a hub-sourced run (the same config with checkpoints downloaded from the
loopback fake hub, tests/fakehub.py, which serves the lab run's checkpoints): in the lab, every
checkpoint comes out of one pretraining run, so a new step retrains and reruns everything.
A seed added to `seeds` runs on a touched finished state (every planned output an empty file or
folder, then `snakemake --touch`): no training, and the mtime and missing-output triggers only
(params and code of the other seeds' rules are compared in tests/test_seeds.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tiny_runs import (
    ANALYSIS_RULES,
    TINY,
    UNTIL_CORE,
    PlannedJob,
    fresh_run,
    planned_jobs,
    reference_run,
    results,
    snakemake,
    variant,
)

pytestmark = pytest.mark.slow

HUB_REPO = "grokpath/tiny-lab"
HUB_UNTIL = ("--until", *UNTIL_CORE)  # the hub run (and its dry runs) stop before the analysis


def plan(workdir, configfile, *args: str) -> list[PlannedJob]:
    result = snakemake(workdir, configfile, "-n", *args, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    print(f"\n{configfile.name}: {len(jobs)} jobs planned: {', '.join(sorted(map(str, jobs)))}")
    return jobs


def rules(jobs: list[PlannedJob]) -> set[str]:
    return {job.rule for job in jobs}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return reference_run(tmp_path_factory)


@pytest.fixture(scope="module")
def hub(lab, tmp_path_factory):
    """A finished run whose checkpoints came through download_checkpoint from the fake hub."""
    from fakehub import FakeHub

    from grokpath.sources.hub import revision_name

    steps = yaml.safe_load(TINY.read_text())["checkpoints"]["steps"]
    folder = tmp_path_factory.mktemp("hub_config")
    config = variant(
        {
            "checkpoints": {"source": "hub", "steps": steps, "hub": {"repo_id": HUB_REPO}},
            # as config/olmoe.yaml: one job per checkpoint for each per-checkpoint rule
            "evaluation.checkpoints_per_job": 1, "loss.checkpoints_per_job": 1, "pathways.checkpoints_per_job": 1,
        },
        folder / "hub.yaml",
    )
    branches = {revision_name(s): results(lab) / "checkpoints" / f"step{s}" for s in steps}
    with FakeHub() as fake:
        fake.add_repo(HUB_REPO, branches=branches)
        env = {
            "HF_ENDPOINT": fake.url, "HF_HOME": str(folder / "hf_home"), "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": None,
        }  # fmt: skip
        workdir = fresh_run(tmp_path_factory, "hub", config, *HUB_UNTIL, env=env)
        assert len([p for p in fake.downloads() if p.endswith("model.safetensors")]) == len(steps)
    return workdir, config


def test_unchanged_config_plans_nothing(lab, hub):
    assert plan(lab, TINY) == []
    assert plan(*hub, *HUB_UNTIL) == []


def test_routing_threshold_reruns_only_metrics_and_analysis(lab, tmp_path):
    config = variant({"pathways.threshold": 0.5}, tmp_path / "threshold.yaml")
    jobs = plan(lab, config)
    assert rules(jobs) <= {"pathway_metrics", "all"} | ANALYSIS_RULES
    # Pathway strings are cut at the threshold inside pathway_metrics (extract_pathways stores the
    # full routing weights), so the metric job of the new threshold is the one non-analysis job.
    assert [job.wildcards for job in jobs if job.rule == "pathway_metrics"] == [{"threshold": "0.5"}]


def test_lm_eval_setting_reruns_only_evaluation_and_downstream(lab, tmp_path):
    config = variant({"evaluation.limit": 5}, tmp_path / "limit.yaml")
    jobs = plan(lab, config)
    assert "evaluate" in rules(jobs)
    # contamination scores the test items without lm-eval's limit: it must not rerun.
    assert rules(jobs) <= {"evaluate", "collect_evaluation", "generalization", "match_groups", "all"} | ANALYSIS_RULES


def test_added_checkpoint_runs_its_jobs_and_the_aggregations(hub, tmp_path):
    workdir, base = hub
    steps = yaml.safe_load(base.read_text())["checkpoints"]["steps"]
    new = steps[-1] + 10
    config = variant({"checkpoints.steps": [*steps, new]}, tmp_path / "added.yaml", base=base)
    jobs = plan(workdir, config, *HUB_UNTIL)
    # a one-checkpoint chunk is named by its step
    per_step = {(job.rule, job.wildcards.get("step", job.wildcards.get("chunk"))) for job in jobs}
    chunks = {job.wildcards["chunk"] for job in jobs if job.rule == "evaluate"}
    extractions = {job.wildcards["chunk"] for job in jobs if job.rule == "extract_pathways"}
    # The new checkpoint's own jobs ...
    assert {("download_checkpoint", str(new)), ("sample_loss", str(new)), ("extract_pathways", str(new))} <= per_step
    assert chunks == {str(new)}  # one evaluation job per checkpoint, named by its step: the new one's
    assert extractions == {str(new)}  # pathways do not depend on t*: the old steps' stay
    # ... and no per-checkpoint work for the old ones (downloads, losses, pathways, lm-eval) ...
    for step in steps:
        assert ("download_checkpoint", str(step)) not in per_step and ("sample_loss", str(step)) not in per_step
    # ... plus the aggregations over all checkpoints.
    assert {"memorization", "pathway_metrics", "loss_baselines", "collect_evaluation", "generalization"} <= rules(jobs)
    aggregations = {
        "memorization", "pathway_metrics", "loss_baselines", "collect_evaluation", "generalization",
        "match_groups", "all",
        # EXPECTED (DESIGN): the new last checkpoint is the one contamination scores.
        "contamination",
    }  # fmt: skip
    per_checkpoint = {"download_checkpoint", "sample_loss", "extract_pathways", "evaluate"}
    assert rules(jobs) <= per_checkpoint | aggregations | ANALYSIS_RULES
    assert "make_corpus" not in rules(jobs)


def test_inserted_checkpoint_evaluates_only_itself(hub, tmp_path):
    workdir, base = hub
    steps = yaml.safe_load(base.read_text())["checkpoints"]["steps"]
    inserted = (steps[-2] + steps[-1]) // 2
    config = variant({"checkpoints.steps": sorted([*steps, inserted])}, tmp_path / "inserted.yaml", base=base)
    jobs = plan(workdir, config, *HUB_UNTIL)
    per_step = {(job.rule, job.wildcards.get("step", job.wildcards.get("chunk"))) for job in jobs}
    own = {(rule, str(inserted)) for rule in ("download_checkpoint", "sample_loss", "extract_pathways", "evaluate")}
    assert {pair for pair in per_step if pair[1] is not None} == own
    # the last checkpoint is unchanged: contamination (which scores it) stays
    assert "contamination" not in rules(jobs)


def test_added_checkpoint_in_the_lab_retrains(lab, tmp_path):
    """EXPECTED (DESIGN): lab checkpoints are one pretraining run; a new step reruns it and all after."""
    steps = yaml.safe_load(TINY.read_text())["checkpoints"]["steps"]
    config = variant({"checkpoints.steps": [*steps, steps[-1] + 10]}, tmp_path / "lab_added.yaml")
    jobs = plan(lab, config)
    assert "pretrain_lab" in rules(jobs) and "make_corpus" not in rules(jobs)
    # one sample_loss job for the one chunk of all checkpoints (checkpoints_per_job 20)
    assert [job.wildcards["chunk"] for job in jobs if job.rule == "sample_loss"] == [f"{steps[0]}-{steps[-1] + 10}"]


def directory_outputs(configfile: Path) -> list[re.Pattern]:
    """The patterns of the workflow's directory() outputs under this config."""
    from snakemake.api import SnakemakeApi
    from snakemake.io import regex_from_filepattern
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    from workflow_utils import ROOT

    with SnakemakeApi(OutputSettings(quiet=True)) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(), snakefile=ROOT / "Snakefile", workdir=ROOT,
            config_settings=ConfigSettings(configfiles=[configfile]),
        )._workflow  # fmt: skip
        return [
            re.compile(regex_from_filepattern(str(f)))
            for rule in workflow.rules
            for f in rule.output
            if f.is_directory
        ]


def touched_run(workdir: Path, configfile: Path) -> list[PlannedJob]:
    """A finished run without running a job: every planned output made empty (a folder for
    directory() outputs), then `--touch` dates them in DAG order. Returns the planned jobs."""
    result = snakemake(workdir, configfile, "-n", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    folders = directory_outputs(configfile)
    outputs = [
        path
        for line in result.stdout.splitlines() if line.startswith("    output: ")
        for path in line.split(": ", 1)[1].split(", ")
    ]  # fmt: skip
    for path in map(workdir.joinpath, outputs):
        if any(p.match(str(path.relative_to(workdir))) for p in folders):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    touched = snakemake(workdir, configfile, "--touch", timeout=300)
    assert touched.returncode == 0, touched.stderr[-3000:]
    return planned_jobs(result.stdout)


def test_added_seed_runs_only_its_jobs_and_the_aggregation(tmp_path):
    """seeds [1, 2] -> [1, 2, 3]: seed 3's whole run and the aggregation over seeds, nothing else."""
    two = variant({"seeds": [1, 2]}, tmp_path / "two_seeds.yaml")
    three = variant({"seeds": [1, 2, 3]}, tmp_path / "three_seeds.yaml")
    workdir = tmp_path / "run"
    workdir.mkdir()
    first = touched_run(workdir, two)
    assert (workdir / "results" / "tiny" / "seed1" / "checkpoints" / "step10").is_dir()
    assert plan(workdir, two) == []
    jobs = plan(workdir, three)
    aggregation = {"seeds_summary", "fig7_across_seeds", "all"}
    assert {rule for rule in rules(jobs) if not rule.startswith("seed3_")} == aggregation
    # seed 3 runs everything seed 1 ran, once: its own corpus split and pretraining included
    seed1 = sorted(str(job).removeprefix("seed1_") for job in first if job.rule.startswith("seed1_"))
    seed3 = sorted(str(job).removeprefix("seed3_") for job in jobs if job.rule.startswith("seed3_"))
    assert seed3 == seed1 and "pretrain_lab" in seed3 and "make_corpus" in seed3
