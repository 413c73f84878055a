"""checkpoints.source local: the folders of your own training run, found, checked and read in place.

Unit tests of grokpath.sources.local_checkpoints on hand-made folders (config.json, a weights file, a
tokenizer file: enough for the checks, which never load a model), dry runs that show the DAG
takes the folders as inputs, and (slow) a real 3-step `transformers.Trainer` run of a tiny OLMoE
through the whole DAG of the tiny config.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml

from grokpath.config import validate_config
from grokpath.errors import GrokpathError
from grokpath.provenance import checkpoint_sources
from grokpath.sources.local_checkpoints import ARCHITECTURE_KEYS, local_checkpoints
from tiny_runs import TINY, planned_jobs
from workflow_utils import ROOT, snakemake

OLMOE = {
    "model_type": "olmoe", "architectures": ["OlmoeForCausalLM"], "vocab_size": 64, "hidden_size": 16,
    "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
    "num_experts": 4, "num_experts_per_tok": 2,
}  # fmt: skip


def fake_checkpoint(folder: Path, *, weights=True, tokenizer=True, config=True, **changes) -> Path:
    """A folder that passes (or, with a flag off, fails) the checks; no loadable model."""
    folder.mkdir(parents=True, exist_ok=True)
    if config:
        (folder / "config.json").write_text(json.dumps({**OLMOE, **changes}))
    if weights:
        (folder / "model.safetensors").write_bytes(b"")
    if tokenizer:
        (folder / "tokenizer_config.json").write_text("{}")
    return folder


def trainer_dir(root: Path, steps=(1, 2, 3), **kwargs) -> Path:
    for step in steps:
        fake_checkpoint(root / f"checkpoint-{step}", **kwargs)
    return root


def error(local: dict, steps=None, base=None) -> str:
    with pytest.raises(GrokpathError) as caught:
        local_checkpoints(local, steps, base)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- finding the folders


def test_a_trainer_output_dir_gives_its_steps_in_order(tmp_path):
    run = trainer_dir(tmp_path / "run", steps=(20, 3, 100))
    (run / "runs").mkdir()  # TensorBoard logs, and folders that only look alike, are not steps
    (run / "checkpoint-final").mkdir()
    (run / "checkpoint-7.tmp").mkdir()
    found = local_checkpoints({"path": str(run)})
    assert found.steps == [3, 20, 100]
    assert found.folders[20] == str((run / "checkpoint-20").resolve())
    assert found.tokenizer is None and found.model_type == "olmoe"


def test_given_steps_are_exactly_those_and_each_needs_its_folder(tmp_path):
    run = trainer_dir(tmp_path / "run", steps=(1, 2, 3, 4))
    assert local_checkpoints({"path": str(run)}, steps=[2, 4]).steps == [2, 4]
    message = error({"path": str(run)}, steps=[2, 5])
    assert message.startswith("config key checkpoints.steps: step 5 has no folder in")
    assert str(run) in message and "steps found: 1, 2, 3, 4" in message


def test_a_pattern_names_another_layout(tmp_path):
    for step in (100, 200):
        fake_checkpoint(tmp_path / "out" / f"step_{step:06d}" / "hf")
    found = local_checkpoints({"path": str(tmp_path / "out"), "pattern": "step_{step}/hf"})
    assert found.steps == [100, 200]
    assert "{step}" in error({"path": str(tmp_path / "out"), "pattern": "step_hf"})


def test_an_explicit_map_names_each_steps_folder(tmp_path):
    fake_checkpoint(tmp_path / "early")
    fake_checkpoint(tmp_path / "late")
    found = local_checkpoints({"path": str(tmp_path), "folders": {"10": "early", 30: str(tmp_path / "late")}})
    assert found.folders == {10: str((tmp_path / "early").resolve()), 30: str((tmp_path / "late").resolve())}


def test_relative_paths_are_relative_to_the_working_directory(tmp_path):
    trainer_dir(tmp_path / "out")
    assert local_checkpoints({"path": "out"}, base=tmp_path).folders[1] == str(tmp_path / "out" / "checkpoint-1")


def test_fewer_than_two_checkpoints_or_no_folder_stop(tmp_path):
    run = trainer_dir(tmp_path / "run", steps=(5,))
    assert "matches 1 checkpoint folder(s); the metrics need at least 2" in error({"path": str(run)})
    assert error({"path": str(tmp_path / "missing")}) == (
        f"config key checkpoints.local.path: {tmp_path / 'missing'} is not a folder"
    )


# ---------------------------------------------------------------- checking them


def test_missing_weights_name_the_folder(tmp_path):
    run = trainer_dir(tmp_path / "run")
    (run / "checkpoint-2" / "model.safetensors").unlink()
    assert error({"path": str(run)}) == (
        f"local checkpoint {run / 'checkpoint-2'}: no weights (expected *.safetensors or pytorch_model*.bin)"
    )


def test_sharded_and_bin_weights_count(tmp_path):
    run = trainer_dir(tmp_path / "run", weights=False)
    (run / "checkpoint-1" / "model-00001-of-00002.safetensors").write_bytes(b"")
    (run / "checkpoint-2" / "pytorch_model.bin").write_bytes(b"")
    (run / "checkpoint-3" / "pytorch_model-00001-of-00003.bin").write_bytes(b"")
    assert local_checkpoints({"path": str(run)}).steps == [1, 2, 3]


def test_missing_or_broken_config_names_the_folder(tmp_path):
    run = trainer_dir(tmp_path / "run")
    (run / "checkpoint-3" / "config.json").unlink()
    assert error({"path": str(run)}) == f"local checkpoint {run / 'checkpoint-3'}: no config.json"
    (run / "checkpoint-3" / "config.json").write_text("{not json")
    assert error({"path": str(run)}).startswith(f"local checkpoint {run / 'checkpoint-3'}: config.json unreadable")
    assert error({"folders": {1: str(run / "checkpoint-1"), 2: str(tmp_path / "gone")}}) == (
        f"local checkpoint {tmp_path / 'gone'}: no such folder"
    )


@pytest.mark.parametrize(
    ("key", "value"), [("num_experts", 8), ("num_hidden_layers", 4), ("model_type", "mixtral"), ("hidden_size", 32)]
)
def test_mixed_architectures_name_both_folders_and_the_difference(tmp_path, key, value):
    assert key in ARCHITECTURE_KEYS
    run = trainer_dir(tmp_path / "run", steps=(1, 2))
    fake_checkpoint(run / "checkpoint-3", **{key: value})
    message = error({"path": str(run)})
    assert message.startswith(f"local checkpoint {run / 'checkpoint-3'}: architecture differs from {run / 'checkpoint-1'}")
    assert f"{key} {value!r} vs {OLMOE[key]!r}" in message


def test_a_family_without_a_router_adapter_stops(tmp_path):
    run = trainer_dir(tmp_path / "run", model_type="llama")
    message = error({"path": str(run)})
    assert f"local checkpoint {run / 'checkpoint-1'}: model_type 'llama' has no MoE router adapter" in message
    assert "olmoe" in message and "mixtral" in message


# ---------------------------------------------------------------- the tokenizer


def test_no_tokenizer_names_the_folder_and_the_key(tmp_path):
    run = trainer_dir(tmp_path / "run", tokenizer=False)
    message = error({"path": str(run)})
    assert message.startswith(f"local checkpoint {run / 'checkpoint-1'}: no tokenizer")
    assert "processing_class" in message and "checkpoints.local.tokenizer" in message


def test_a_tokenizer_folder_serves_every_checkpoint(tmp_path):
    run = trainer_dir(tmp_path / "run", tokenizer=False)
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text("{}")
    found = local_checkpoints({"path": "run", "tokenizer": "tok"}, base=tmp_path)
    assert found.tokenizer == str((tmp_path / "tok").resolve())
    (tmp_path / "empty").mkdir()
    assert "folder" in error({"path": str(run), "tokenizer": str(tmp_path / "empty")}) and "holds no tokenizer" in error(
        {"path": str(run), "tokenizer": str(tmp_path / "empty")}
    )
    assert error({"path": str(run), "tokenizer": "./nowhere"}, base=tmp_path) == (
        f"config key checkpoints.local.tokenizer: folder {tmp_path / 'nowhere'} does not exist"
    )


def test_a_hub_tokenizer_must_be_cached_when_offline(tmp_path, monkeypatch):
    run = trainer_dir(tmp_path / "run", tokenizer=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = error({"path": str(run), "tokenizer": "allenai/OLMoE-1B-7B-0924"}, base=tmp_path)
    assert "'allenai/OLMoE-1B-7B-0924' is neither a folder nor in the local HF cache" in message
    assert "hf download allenai/OLMoE-1B-7B-0924" in message
    # cached: a snapshot with the tokenizer's config
    snapshot = tmp_path / "hf-cache" / "models--allenai--OLMoE-1B-7B-0924" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer_config.json").write_text("{}")
    refs = snapshot.parents[1] / "refs"
    refs.mkdir()
    (refs / "main").write_text("a" * 40)
    found = local_checkpoints({"path": str(run), "tokenizer": "allenai/OLMoE-1B-7B-0924"}, base=tmp_path)
    assert found.tokenizer == "allenai/OLMoE-1B-7B-0924"
    # online, an uncached name is left to the jobs to fetch
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert local_checkpoints({"path": str(run), "tokenizer": "org/other"}, base=tmp_path).tokenizer == "org/other"


def test_the_key_tokenizer_wins_over_the_folders_own(tmp_path):
    run = trainer_dir(tmp_path / "run")
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer_config.json").write_text("{}")
    assert local_checkpoints({"path": str(run), "tokenizer": str(tmp_path / "tok")}).tokenizer == str(tmp_path / "tok")


# ---------------------------------------------------------------- config and provenance


@pytest.fixture
def tiny_config() -> dict:
    return yaml.safe_load(TINY.read_text())


def local_config(config: dict, path, **local) -> dict:
    config = copy.deepcopy(config)
    config["run"] = "tiny_local"
    config["checkpoints"] = {"source": "local", "local": {"path": str(path), **local}}
    return config


def test_config_keys(tiny_config):
    config = validate_config(local_config(tiny_config, "run"))
    assert config["checkpoints"]["local"]["path"] == "run"
    config = local_config(tiny_config, "run")
    del config["checkpoints"]["local"]
    with pytest.raises(GrokpathError, match="config key checkpoints.local: required because checkpoints.source is 'local'"):
        validate_config(config)
    lab = copy.deepcopy(tiny_config)
    del lab["checkpoints"]["steps"]
    with pytest.raises(GrokpathError, match="config key checkpoints.steps: required because checkpoints.source is 'lab'"):
        validate_config(lab)
    bad = local_config(tiny_config, "run", pattern="checkpoint")
    with pytest.raises(GrokpathError, match="checkpoints.local.pattern"):
        validate_config(bad)


def test_versions_record_local_checkpoints_with_their_folders(tmp_path):
    found = local_checkpoints({"path": str(trainer_dir(tmp_path / "run"))})
    entries = checkpoint_sources([], [], found.provenance())
    assert entries[0] == {"step": 1, "source": "local", "path": found.folders[1], "tokenizer": None}
    assert [e["step"] for e in entries] == [1, 2, 3]


# ---------------------------------------------------------------- the DAG (dry runs)


def write_config(config: dict, dest: Path) -> Path:
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def test_dry_run_reads_the_folders_in_place_and_plans_no_checkpoint_rule(tmp_path, tiny_config):
    run = trainer_dir(tmp_path / "work" / "trainer-out", steps=(1, 2, 3))
    configfile = write_config(local_config(tiny_config, "trainer-out"), tmp_path / "local.yaml")
    result = snakemake(tmp_path / "work", configfile, "-n", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    rules = [job.rule for job in jobs]
    assert "pretrain_lab" not in rules and "download_checkpoint" not in rules and "build_tokenizer" not in rules
    # the tiny config takes all checkpoints in one job per rule: one chunk named by its steps
    assert [job.wildcards["chunk"] for job in jobs if job.rule == "sample_loss"] == ["1-3"]
    assert [job.wildcards["chunk"] for job in jobs if job.rule == "extract_pathways"] == ["1-3"]
    assert str((run / "checkpoint-2").resolve()) in result.stdout  # an input, where it lies
    assert "results/tiny_local/checkpoints" not in result.stdout

    # a broken folder stops the dry run in one line that names it
    (run / "checkpoint-2" / "model.safetensors").unlink()
    result = snakemake(tmp_path / "work", configfile, "-n", timeout=300)
    assert result.returncode != 0
    assert f"local checkpoint {(run / 'checkpoint-2').resolve()}: no weights" in result.stderr + result.stdout
    assert not (tmp_path / "work" / "results").exists()


def test_example_config_dry_runs_on_a_trainer_folder(tmp_path):
    """config/examples/local_checkpoints.yaml, with its folder made here."""
    example = yaml.safe_load((ROOT / "config" / "examples" / "local_checkpoints.yaml").read_text())
    local = example["checkpoints"]["local"]
    work = tmp_path / "work"
    trainer_dir(work / local["path"], steps=(500, 1000, 1500), tokenizer=False)
    (work / local["tokenizer"]).mkdir(parents=True)
    (work / local["tokenizer"] / "tokenizer.json").write_text("{}")
    result = snakemake(work, ROOT / "config" / "examples" / "local_checkpoints.yaml", "-n", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # one job per checkpoint (the default checkpoints_per_job)
    steps = sorted(int(job.wildcards["chunk"]) for job in planned_jobs(result.stdout) if job.rule == "sample_loss")
    assert steps == [500, 1000, 1500]


def parsed_rules(config: dict, workdir: Path) -> dict:
    """rule name -> Rule of the workflow parsed in process (no DAG, no jobs)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    configfile = write_config(config, workdir / "config.yaml")
    with SnakemakeApi(OutputSettings(quiet=True)) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[configfile]),
            snakefile=ROOT / "Snakefile",
            workdir=workdir,
        )._workflow
        return {rule.name: rule for rule in workflow.rules}


LOADING_RULES = ("sample_loss", "extract_pathways", "evaluate", "contamination", "instruction_tune")


def test_local_rules_get_the_step_and_the_tokenizer_as_params(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    trainer_dir(tmp_path / "out", tokenizer=False)
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text("{}")
    tiny_config["evaluation"]["matching"]["embedding"] = "tfidf"
    rules = parsed_rules(local_config(tiny_config, tmp_path / "out", tokenizer=str(tmp_path / "tok")), tmp_path)
    for name in LOADING_RULES:
        assert rules[name].params["tokenizer"] == str((tmp_path / "tok").resolve()), name
    for name in ("sample_loss", "extract_pathways", "evaluate"):
        assert callable(rules[name].params["steps"]), name
    assert "pretrain_lab" not in rules and "download_checkpoint" not in rules
    assert [entry["path"] for entry in rules["versions"].params["local_checkpoints"]] == [
        str((tmp_path / "out" / f"checkpoint-{s}").resolve()) for s in (1, 2, 3)
    ]


def test_device_map_reaches_the_loading_rules_and_is_absent_by_default(tmp_path, tiny_config, monkeypatch):
    """Absent by default: the params of runs made before the key stay as they were (no rerun)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plain = parsed_rules(tiny_config, tmp_path)
    for name in LOADING_RULES:
        assert not {"device_map", "tokenizer", "step", "steps"} & set(plain[name].params.keys()), name
    rules = parsed_rules({**tiny_config, "device_map": "auto"}, tmp_path)
    for name in LOADING_RULES:
        assert rules[name].params["device_map"] == "auto", name


def test_gpus_and_envs_come_from_the_config_not_from_the_submit_host(tmp_path, tiny_config, monkeypatch):
    """device auto asks no GPU even where torch sees one (the submit host decides nothing);
    device cuda asks one per torch rule and switches the torch rules to the CUDA envs."""
    import torch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    auto = parsed_rules({**tiny_config, "device": "auto"}, tmp_path)
    cuda = parsed_rules({**tiny_config, "device": "cuda"}, tmp_path)
    for name in ("pretrain_lab", *LOADING_RULES):
        assert auto[name].resources["gpu"] == 0 and cuda[name].resources["gpu"] == 1, name
    assert auto["sample_loss"].conda_env.endswith("envs/torch.yaml")
    assert cuda["sample_loss"].conda_env.endswith("envs/torch-cuda.yaml")
    assert cuda["evaluate"].conda_env.endswith("envs/lmeval-cuda.yaml")
    assert cuda["match_groups"].conda_env.endswith("envs/lmeval-cuda.yaml")
    assert cuda["memorization"].conda_env.endswith("envs/stats.yaml")


# ---------------------------------------------------------------- a real Trainer run (slow)


def write_trainer_run(dest: Path, config: dict, steps: int = 3) -> tuple[Path, Path]:
    """A 3-step transformers.Trainer run of the tiny config's OLMoE on its lab corpus, saved every
    step without a tokenizer (none given to the Trainer), plus the lab tokenizer in its own folder.
    Returns (output_dir, tokenizer folder)."""
    import torch
    from transformers import Trainer, TrainingArguments, default_data_collator

    from grokpath.evaluation.instruction_tuning import LAB_TEMPLATE_WORDS
    from grokpath.lab.corpus import write_corpus
    from grokpath.lab.model import init_lab_model
    from grokpath.lab.tokenizer import build_tokenizer, save_tokenizer
    from grokpath.tableio import read_jsonl

    corpus = dest / "corpus"
    manifest = write_corpus({n: d["lab"] for n, d in config["domains"].items()}, config["seed"], corpus)
    tokenizer = build_tokenizer(manifest["vocabulary"] + list(LAB_TEMPLATE_WORDS))
    save_tokenizer(tokenizer, dest / "tokenizer")
    model = init_lab_model(config["model"], len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed=0)
    width = config["loss"]["max_length"]
    rows = []
    for domain in config["domains"]:
        for row in read_jsonl(corpus / domain / "train.jsonl"):
            ids = tokenizer(row["text"], add_special_tokens=False)["input_ids"][: width - 1] + [tokenizer.eos_token_id]
            pad = width - len(ids)
            rows.append({
                "input_ids": torch.tensor(ids + [tokenizer.pad_token_id] * pad),
                "attention_mask": torch.tensor([1] * len(ids) + [0] * pad),
                "labels": torch.tensor(ids + [-100] * pad),
            })  # fmt: skip
    args = TrainingArguments(
        output_dir=str(dest / "trainer-out"), max_steps=steps, save_steps=1, save_strategy="steps",
        per_device_train_batch_size=32, learning_rate=3e-3, warmup_steps=0, logging_steps=1,
        report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    Trainer(model=model, args=args, train_dataset=rows, data_collator=default_data_collator).train()
    return dest / "trainer-out", dest / "tokenizer"


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_a_trainer_run_goes_through_the_whole_dag(tmp_path, tiny_config):
    out, tokenizer = write_trainer_run(tmp_path / "training", tiny_config)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert not (out / "checkpoint-1" / "tokenizer.json").exists()  # the Trainer had none to save
    before = tree(out)
    configfile = write_config(local_config(tiny_config, out, tokenizer=str(tokenizer)), tmp_path / "local.yaml")
    work = tmp_path / "work"
    result = snakemake(work, configfile, "--cores", "1", timeout=3000)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    import pandas as pd

    results = work / "results" / "tiny_local"
    for step in (1, 2, 3):
        loss = pd.read_parquet(results / "loss" / "steps1-3" / f"step{step}.parquet")
        assert (loss["step"] == step).all() and loss["loss"].notna().all()
        pathways = pd.read_parquet(results / "pathways" / "steps1-3" / f"step{step}.parquet")
        assert set(pathways["layer"]) == {0, 1} and pathways["weights"].map(len).eq(4).all()
    items = pd.read_parquet(results / "eval" / "items.parquet")
    assert set(items["step"]) == {1, 2, 3}
    assert set(items["task"]) == set(tiny_config["evaluation"]["tasks"].values())
    assert (results / "summary.md").is_file()
    versions = json.loads((results / "versions.json").read_text())
    assert versions["checkpoints"] == [
        {"step": s, "source": "local", "path": str((out / f"checkpoint-{s}").resolve()), "tokenizer": str(tokenizer.resolve())}
        for s in (1, 2, 3)
    ]
    assert not (results / "checkpoints").exists()
    assert tree(out) == before, "the run's own folders were changed"
    again = snakemake(work, configfile, "-n", timeout=300)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
