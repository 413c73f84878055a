import copy
from pathlib import Path

import pytest
import yaml

from grokpath.config import load_config, validate_config
from grokpath.errors import GrokpathError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "config").glob("*.yaml")) + sorted((ROOT / "tests" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    load_config(path)


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def error_of(config) -> str:
    with pytest.raises(GrokpathError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_top_level_key(config):
    config["learning_rate"] = 1
    assert "unknown config key learning_rate" in error_of(config)


def test_unknown_nested_key_names_its_path(config):
    config["domains"]["math"]["epz"] = 1.0
    assert "domains.math.epz" in error_of(config)


def test_eps_out_of_range(config):
    config["domains"]["code"]["eps"] = -1
    assert "domains.code.eps" in error_of(config)


def test_wrong_type(config):
    config["pretrain"]["batch_size"] = "big"
    assert "pretrain.batch_size" in error_of(config)


def test_steps_must_increase(config):
    config["checkpoints"]["steps"] = [100, 300, 200]
    message = error_of(config)
    assert "checkpoints.steps" in message and "300 then 200" in message


def test_monitor_every_must_be_a_multiple_of_log_every(config):
    config["pretrain"]["monitor_every"] = 75  # log_every 50
    message = error_of(config)
    assert "pretrain.monitor_every" in message and "multiple of pretrain.log_every (50), got 75" in message
    config["pretrain"]["monitor_every"] = 100
    validate_config(config)
    del config["pretrain"]["monitor_every"]  # its default (50) is checked as well
    config["pretrain"]["log_every"] = 20
    assert "multiple of pretrain.log_every (20), got 50" in error_of(config)


def test_hub_corpus_needs_hub_specs(config):
    config = copy.deepcopy(config)
    config["corpus"]["source"] = "hub"
    config["checkpoints"]["source"] = "hub"
    config["checkpoints"]["hub"] = {"repo_id": "allenai/OLMoE-1B-7B-0924"}
    assert "domains.math.hub" in error_of(config)


def test_unreadable_config_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed\n")
    with pytest.raises(GrokpathError, match="bad.yaml"):
        load_config(bad)


def test_paper_config_lists_the_ten_revisions():
    config = load_config(ROOT / "config" / "olmoe.yaml")
    from grokpath.sources.hub import revision_name

    revisions = config["checkpoints"]["hub"]["revisions"]
    assert [revisions[str(s)] for s in config["checkpoints"]["steps"]] == [
        revision_name(s) for s in config["checkpoints"]["steps"]
    ]
    assert revisions["125000"] == "step125000-tokens524B"
