"""Jobs that take seconds run on the submit host (`localrules`); model and data jobs go to the cluster."""

from pathlib import Path

import pytest
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"correlations", "summary", "fig1_memorization_generalization", "fig7_metric_vs_accuracy",
         "table1_correlations", "collect_evaluation", "generalization", "memorization", "versions"}  # fmt: skip
HEAVY = {"pretrain_lab", "download_checkpoint", "sample_loss", "extract_pathways", "pathway_metrics",
         "evaluate", "instruction_tune", "contamination", "match_groups", "ablation_edit_distance"}  # fmt: skip


def local_and_all_rules(configfile: Path) -> tuple[set[str], set[str]]:
    with SnakemakeApi(OutputSettings(quiet=True)) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[configfile]),
            snakefile=ROOT / "Snakefile",
            workdir=ROOT,
        )._workflow
        return set(workflow._localrules), {rule.name for rule in workflow.rules}


@pytest.mark.parametrize("configfile", ["tests/configs/tiny.yaml", "config/olmoe.yaml"])
def test_quick_jobs_are_local_and_heavy_ones_are_not(configfile, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local, rules = local_and_all_rules(ROOT / configfile)
    assert QUICK & rules <= local
    assert not (HEAVY & local)
    assert local <= rules  # Snakemake checks this too, but only when it builds the DAG
