"""The whole current DAG on the tiny config, plus the paper-scale DAG as a dry run."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tiny_runs import reference_run
from workflow_utils import ROOT, script, snakemake

TINY = ROOT / "tests" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """results/tiny of the one tiny run every slow module shares (read-only)."""
    return reference_run(tmp_path_factory) / "results" / "tiny"


def chunk_of(steps: list[int]) -> str:
    """The folder of the tiny config's one chunk (all steps in one job: checkpoints_per_job 20)."""
    return f"steps{steps[0]}-{steps[-1]}"


@pytest.mark.slow
def test_tiny_run_writes_every_table(tiny_run):
    config = yaml.safe_load(TINY.read_text())
    steps = config["checkpoints"]["steps"]
    for step in steps:
        assert (tiny_run / "checkpoints" / f"step{step}" / "model.safetensors").is_file()
        loss = pd.read_parquet(tiny_run / "loss" / chunk_of(steps) / f"step{step}.parquet")
        assert list(loss.columns) == ["domain", "sample_id", "split", "step", "loss", "n_tokens"]
        assert set(loss["split"]) == {"train", "valid"} and (loss["step"] == step).all()
        assert loss["loss"].notna().all() and (loss["n_tokens"] > 0).all()
    samples = pd.read_parquet(tiny_run / "memorization" / "samples.parquet")
    assert {"domain", "sample_id", "t_star", "memorized", "eps", "delta", "final_loss"} <= set(samples.columns)
    assert set(samples["domain"]) == set(config["domains"])
    probe = pd.read_parquet(tiny_run / "train" / "probe.parquet")
    assert set(probe["step"]) == set(steps) and probe["accuracy"].between(0, 1).all()
    monitor = pd.read_parquet(tiny_run / "train" / "monitor.parquet")  # every monitor_every (10) steps
    assert set(monitor["step"]) == set(steps) and set(config["domains"]) < set(monitor["domain"])


TIDY = ["step", "domain", "group", "layer", "metric", "value", "se", "n"]


@pytest.mark.slow
def test_tiny_run_writes_pathways_and_metrics(tiny_run):
    config = yaml.safe_load(TINY.read_text())
    steps = config["checkpoints"]["steps"]
    n_layers = config["model"]["num_layers"]
    for step in steps:
        pathways = pd.read_parquet(tiny_run / "pathways" / chunk_of(steps) / f"step{step}.parquet")
        assert (tiny_run / "pathways" / chunk_of(steps) / f"step{step}.routers.parquet").is_file()
        assert set(pathways["layer"]) == set(range(n_layers))
        assert pathways["weights"].map(len).eq(config["model"]["num_experts"]).all()
    metrics = tiny_run / "metrics" / f"thr{config['pathways']['threshold']}"
    tables = {name: pd.read_parquet(metrics / f"{name}.parquet") for name in ("edit_distance", "consistency", "routing")}
    tables["loss"] = pd.read_parquet(tiny_run / "metrics" / "loss_baselines.parquet")
    for name, table in tables.items():
        # the consistency table also counts the samples its min-cos guard left out
        assert list(table.columns) == TIDY + (["n_excluded"] if name == "consistency" else []), name
        assert set(table["step"]) == set(steps)
    assert {"edit_distance_char", "edit_distance_id"} <= set(tables["edit_distance"]["metric"])
    # the normalised consistencies are left out for sets whose samples all fall under the min-cos
    # guard, as on this barely trained tiny model (all adjacent cosines negative); the plain mean
    # cosine is always there
    assert {"consistency_mean_cos", "adjacent_layer_cos"} <= set(tables["consistency"]["metric"])
    assert {"routing_entropy", "router_saturation"} <= set(tables["routing"]["metric"])
    assert {"training_loss", "training_loss_ma", "validation_loss"} <= set(tables["loss"]["metric"])


@pytest.mark.slow
def test_tiny_run_evaluates_every_checkpoint_on_every_task(tiny_run):
    config = yaml.safe_load(TINY.read_text())
    items = pd.read_parquet(tiny_run / "eval" / "items.parquet")
    assert set(items["task"]) == set(config["evaluation"]["tasks"].values())
    assert set(items["step"]) == set(config["checkpoints"]["steps"])
    per_task = items.groupby(["task", "step"]).size()
    assert (per_task == config["domains"]["math"]["lab"]["n_test"]).all()
    generalization = pd.read_parquet(tiny_run / "eval" / "generalization.parquet")
    assert {"task", "domain", "doc_id", "gen_step", "generalized"} <= set(generalization.columns)
    matches = pd.read_parquet(tiny_run / "eval" / "matches.parquet")
    assert list(matches.columns) == ["domain", "train_group", "test_group", "similarity", "delay", "n_train", "n_test"]


@pytest.mark.slow
def test_rerun_has_nothing_to_do(tiny_run):
    result = snakemake(tiny_run.parent.parent, TINY, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_paper_scale_dag_builds_offline(tmp_path):
    result = snakemake(tmp_path, ROOT / "config" / "olmoe.yaml", "-n", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.count("rule download_checkpoint:") == 10
    assert "step1100000-tokens4613B" in out or "download_checkpoint" in out
    assert out.count("rule sample_loss:") == 10


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, ROOT / "config" / "config.yaml", "--lint", timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Congratulations" in result.stdout + result.stderr


def test_unknown_config_key_stops_before_any_job(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["memorisation"] = {"delta": 0.05}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, bad, timeout=120)
    assert result.returncode != 0
    assert "unknown config key memorisation" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_checkpoint_without_weights_fails_in_one_line(tiny_run, tmp_path):
    broken = tmp_path / "step10"
    shutil.copytree(tiny_run / "checkpoints" / "step10", broken)
    (broken / "model.safetensors").unlink()
    out = tmp_path / "loss"
    result = loss_script(tiny_run, broken, out)
    assert result.returncode == 1
    assert f"checkpoint dir {broken} has no weights" in result.stderr.strip().splitlines()[-1]
    assert not out.exists()


@pytest.mark.slow
def test_truncated_weights_fail_naming_the_dir(tiny_run, tmp_path):
    broken = tmp_path / "step10"
    shutil.copytree(tiny_run / "checkpoints" / "step10", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    out = tmp_path / "loss"
    result = loss_script(tiny_run, broken, out)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: checkpoint dir") and str(broken) in last
    assert not out.exists()


@pytest.mark.slow
def test_empty_sample_set_fails_naming_the_file(tiny_run, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_run / "corpus", corpus)
    (corpus / "math" / "train.jsonl").write_text("")
    out = tmp_path / "loss"
    result = loss_script(tiny_run, tiny_run / "checkpoints" / "step10", out, corpus=corpus)
    assert result.returncode == 1
    assert "math/train.jsonl: empty sample set" in result.stderr.strip().splitlines()[-1]
    assert not out.exists()


def loss_script(run_dir: Path, checkpoint: Path, out: Path, corpus: Path | None = None):
    corpus = corpus or run_dir / "corpus"
    return script(
        "sample_loss", f"checkpoints={checkpoint}", f"manifest={corpus / 'manifest.json'}",
        "domains=[math,code,commonsense,domain_specific]", "batch_size=64", "max_length=32",
        "append_eos=true", "span=answer", "device=cpu", f"loss={out}",
    )


@pytest.mark.slow
def test_lm_eval_cli_agrees_with_our_per_item_table(tiny_run, tmp_path):
    """The reference scorer, run as users would run it, gives the accuracy our tables hold."""
    import json
    import os
    import subprocess
    import sys

    step = 30
    steps = yaml.safe_load(TINY.read_text())["checkpoints"]["steps"]
    tasks_dir = tiny_run / "eval" / "chunks" / f"steps{steps[0]}-{steps[-1]}.tasks"
    command = [
        sys.executable, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={tiny_run / 'checkpoints' / f'step{step}'},max_length=32,dtype=float32",
        "--tasks", "lab_math,lab_commonsense", "--include_path", str(tasks_dir),
        "--device", "cpu", "--batch_size", "8", "--output_path", str(tmp_path / "cli"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(next((tmp_path / "cli").rglob("results_*.json")).read_text())["results"]
    items = pd.read_parquet(tiny_run / "eval" / "items.parquet")
    ours = items[items["step"] == step].groupby("task")["correct"].mean()
    assert results["lab_math"]["exact_match,strip"] == pytest.approx(ours["lab_math"])
    assert results["lab_commonsense"]["acc,none"] == pytest.approx(ours["lab_commonsense"])
