"""The online pathway monitor (grokpath.routing.monitor) on a tiny lab OLMoE: the Trainer callback's values
reach the Trainer's loggers and log history, the values equal the offline tables on a checkpoint,
and a monitored run trains exactly as an unmonitored one."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from grokpath.errors import GrokpathError
from grokpath.lab.balance import RouterBalance
from grokpath.lab.corpus import write_corpus
from grokpath.lab.model import init_lab_model
from grokpath.lab.pretrain import load_corpus, save_checkpoint, training_tensors
from grokpath.lab.tokenizer import build_tokenizer
from grokpath.loss.sample_loss import per_sample_nll
from grokpath.routing.extract import extract_pathways, select_samples
from grokpath.routing.metrics import (
    baselines_table,
    consistency_table,
    edit_distance_table,
)
from grokpath.routing.monitor import (
    LOG_PREFIX,
    MONITOR_TABLE_COLUMNS,
    PathwayMonitor,
    draw_probe_samples,
    preserved_rng_state,
)
from grokpath.routing.pathways import load_pathway_table
from grokpath.routing.routers import find_routers, read_router_weights, router_spec_from_checkpoint, write_router_table
from grokpath.sources.checkpoints import load_checkpoint
from grokpath.tokens import encode_samples

MODEL = {"hidden_size": 16, "intermediate_size": 32, "num_layers": 3, "num_heads": 2, "num_experts": 4,
         "top_k": 2, "max_position_embeddings": 32, "router_aux_loss_coef": 0.01}
DOMAINS = {
    "math": {"generator": "modular_sum", "params": {"modulus": 7}, "train_fraction": 0.5, "n_valid": 4, "n_test": 4},
    "code": {"generator": "traced_program", "params": {"modulus": 7}, "train_fraction": 0.5, "n_valid": 4, "n_test": 4},
}
KEYS = ["step", "domain", "group", "layer", "metric"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer([str(i) for i in range(7)] + ["+", "=", "x", "y", "z", "w", ";", "print", "-"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(DOMAINS, 5, root)
    return load_corpus(root, list(DOMAINS))


@pytest.fixture(scope="module")
def probe(corpus):
    return draw_probe_samples(corpus.train, per_domain=12, seed=3)


def lab_model(tokenizer, seed=0, **config):
    model = init_lab_model(MODEL, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed)
    for key, value in config.items():
        setattr(model.config, key, value)
    return model


def train_tensors(tokenizer, corpus):
    samples = [row for domain in DOMAINS for row in corpus.train[domain]]
    return training_tensors(tokenizer, samples, MODEL["max_position_embeddings"], "all")


def custom_loop(model, tokenizer, corpus, steps, monitor=None, seed=0):
    """The lab's step (AdamW, RouterBalance aux loss, grad clip) with a global-RNG data order, so
    any RNG draw by the monitor would change the batches and the dropout masks."""
    ids, attention, labels = train_tensors(tokenizer, corpus)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    balance = RouterBalance(model, MODEL["top_k"], MODEL["num_experts"])
    losses, logged = [], {}
    for step in range(1, steps + 1):
        index = torch.randperm(len(ids))[:16]
        model.train()
        balance.reset()
        out = model(input_ids=ids[index], attention_mask=attention[index], labels=labels[index])
        loss = out.loss + MODEL["router_aux_loss_coef"] * balance.loss(attention[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if monitor is not None:
            values = monitor.step(step)
            assert not balance.logits, "the balance hooks recorded the monitor's forward passes"
            if values:
                logged[step] = values
    balance.remove()
    return losses, logged


def test_draw_probe_samples_is_seeded_and_matches_the_extraction_draw(corpus):
    first = draw_probe_samples(corpus.train, per_domain=5, seed=1)
    assert first == draw_probe_samples(corpus.train, per_domain=5, seed=1)
    assert [r["sample_id"] for r in first] != [r["sample_id"] for r in draw_probe_samples(corpus.train, 5, seed=2)]
    assert [(r["domain"], r["sample_id"]) for r in first] == [
        (r["domain"], r["sample_id"]) for r in select_samples(corpus.train, 5, 1)
    ]
    assert all("prompt" in r for r in first)  # extra fields are kept
    flat = [row for rows in corpus.train.values() for row in rows]
    assert draw_probe_samples(flat, per_domain=5, seed=1) == first
    texts = draw_probe_samples({"web": ["a b", "c d", "e f"]}, per_domain=2, seed=0)
    assert [r["domain"] for r in texts] == ["web", "web"] and all(r["sample_id"] in "012" for r in texts)


def test_trainer_callback_logs_through_the_trainers_loggers(tmp_path, tokenizer, corpus, probe):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Logger(TrainerCallback):
        """Stands in for a `report_to` logger: registered before the monitor's callback."""

        def __init__(self):
            self.seen = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.setdefault(state.global_step, {}).update(logs)

    ids, attention, labels = train_tensors(tokenizer, corpus)
    dataset = [{"input_ids": i, "attention_mask": a, "labels": l} for i, a, l in zip(ids, attention, labels)]
    model = lab_model(tokenizer)
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"), max_steps=30, per_device_train_batch_size=8, learning_rate=5e-3,
        logging_steps=10, save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
    )
    logger = Logger()
    trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[logger])
    monitor = PathwayMonitor(model, probe, tokenizer, every_n_steps=10, threshold=0.7,
                             output=tmp_path / "monitor.parquet", max_length=32)
    monitor.attach(trainer)
    trainer.train()

    key = f"{LOG_PREFIX}/math/edit_distance_char"
    history = {entry["step"]: entry for entry in trainer.state.log_history if key in entry}
    assert sorted(history) == [10, 20, 30]
    # the trainer's own logging goes on as before, in entries of its own
    assert [e["step"] for e in trainer.state.log_history if "loss" in e] == [10, 20, 30]
    for step, entry in history.items():
        for domain in ("math", "code", "all"):
            for metric in ("edit_distance_char", "edit_distance_id", "consistency_mean_cos",
                           "routing_entropy", "probe_loss"):
                assert math.isfinite(entry[f"{LOG_PREFIX}/{domain}/{metric}"])
        # what a report_to logger receives in on_log, at the step the trainer reports
        assert logger.seen[step][key] == entry[key]
    table = pd.read_parquet(tmp_path / "monitor.parquet")
    assert list(table.columns) == MONITOR_TABLE_COLUMNS
    assert sorted(table["step"].unique()) == [10, 20, 30]
    assert not (tmp_path / ".monitor.parquet.parts").exists()
    row = table[(table["step"] == 20) & (table["domain"] == "math") & (table["layer"] == "all")
                & (table["metric"] == "edit_distance_char")]
    assert row["value"].item() == pytest.approx(history[20][key])
    assert model.training


def test_trainer_callback_values_reach_tensorboard_event_files(tmp_path, tokenizer, corpus, probe):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed: the Trainer writes no event files")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import Trainer, TrainingArguments

    ids, attention, labels = train_tensors(tokenizer, corpus)
    dataset = [{"input_ids": i, "attention_mask": a, "labels": l} for i, a, l in zip(ids, attention, labels)]
    model = lab_model(tokenizer)
    logs = tmp_path / "tb"
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"), max_steps=10, per_device_train_batch_size=8, logging_steps=5,
        save_strategy="no", report_to=["tensorboard"], logging_dir=str(logs), use_cpu=True, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    PathwayMonitor(model, probe, tokenizer, every_n_steps=5, max_length=32).attach(trainer)
    trainer.train()
    tags = set()
    for events in logs.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert f"train/{LOG_PREFIX}/math/edit_distance_char" in tags


def test_monitor_equals_offline_pathway_metrics_on_a_checkpoint(tmp_path, tokenizer, corpus, probe):
    trained = lab_model(tokenizer)
    custom_loop(trained, tokenizer, corpus, steps=25)
    checkpoint = tmp_path / "ckpt"
    save_checkpoint(trained, tokenizer, checkpoint, 25)
    threshold, max_pairs, seed = 0.55, 40, 7  # 40 < the pairs of a domain: sampled pairs too

    model, _ = load_checkpoint(checkpoint, "cpu")
    model.train()
    monitor = PathwayMonitor(model, probe, tokenizer, threshold=threshold, max_pairs=max_pairs, seed=seed,
                             batch_size=5, max_length=32)
    ours = monitor.compute(25)
    assert model.training

    offline_model, _ = load_checkpoint(checkpoint, "cpu")
    extract_pathways(offline_model, tokenizer, probe, tmp_path / "step25.parquet", step=25, batch_size=5,
                     max_length=32, device="cpu", progress=False)
    write_router_table(router_spec_from_checkpoint(checkpoint), tmp_path / "step25.routers.parquet")
    table = load_pathway_table(tmp_path / "step25.parquet")
    routers = read_router_weights(tmp_path / "step25.routers.parquet")
    memorization = pd.DataFrame({"domain": [r["domain"] for r in probe], "sample_id": [r["sample_id"] for r in probe],
                                 "t_star": np.nan, "memorized": False})
    routing = baselines_table([table], table, routers.top_k, memorization)
    offline = pd.concat([
        edit_distance_table([table], memorization, threshold, max_pairs, seed, cross_domain=False),
        consistency_table([table], {25: routers.weights}, memorization),
        routing[routing["metric"] == "routing_entropy"],
    ], ignore_index=True)
    offline["n_excluded"] = offline["n_excluded"].fillna(0).astype("int64")

    pathway_rows = ours[ours["metric"] != "probe_loss"]
    assert len(pathway_rows) == len(offline) > 0
    merged = pathway_rows.merge(offline, on=KEYS, suffixes=("", "_offline"), validate="1:1")
    assert len(merged) == len(offline)
    np.testing.assert_allclose(merged["value"], merged["value_offline"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(merged["se"], merged["se_offline"], rtol=0, atol=1e-6, equal_nan=True)
    assert (merged["n"] == merged["n_offline"]).all()
    assert (merged["n_excluded"] == merged["n_excluded_offline"]).all()
    assert {"edit_distance_char", "edit_distance_id", "consistency_mean_cos", "adjacent_layer_cos",
            "routing_entropy"} <= set(merged["metric"])
    assert merged["value"].nunique() > 10  # trained routing: the values are not all alike

    # the probe loss is the offline per-sample loss (span "all") averaged per domain
    sequences = encode_samples(tokenizer, [r["text"] for r in probe], 32, append_eos=False)
    losses = np.array(per_sample_nll(offline_model, sequences, tokenizer.pad_token_id, 8, "cpu"))
    domains = np.array([r["domain"] for r in probe])
    for domain in ("math", "code"):
        value = ours[(ours["metric"] == "probe_loss") & (ours["domain"] == domain)]["value"].item()
        assert value == pytest.approx(losses[domains == domain].mean(), abs=1e-5)


def test_monitor_restores_modes_and_leaves_gradients_rng_and_balance_alone(tokenizer, corpus, probe):
    model = lab_model(tokenizer, attention_dropout=0.2)
    model.train()
    model.model.embed_tokens.eval()  # a module the training loop keeps in eval mode on purpose
    balance = RouterBalance(model, MODEL["top_k"], MODEL["num_experts"])
    ids, attention, labels = train_tensors(tokenizer, corpus)
    model(input_ids=ids[:8], attention_mask=attention[:8], labels=labels[:8]).loss.backward()
    recorded = len(balance.logits)
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    rng = torch.get_rng_state()

    monitor = PathwayMonitor(model, probe, tokenizer, every_n_steps=1, max_length=32)
    for step in (1, 2):
        assert monitor.step(step)
        assert model.training and not model.model.embed_tokens.training
        assert all(m.training for name, m in model.named_modules() if name != "model.embed_tokens")
    assert torch.equal(torch.get_rng_state(), rng)
    assert len(balance.logits) == recorded  # the probe's passes were not recorded
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), params[name])
        if name in grads:
            assert torch.equal(p.grad, grads[name]) and not p.grad.is_inference()
        else:
            assert p.grad is None
    assert all(not m._forward_hooks or m in [layer.mlp.gate for layer in model.model.layers]
               for m in model.modules())
    assert all(len(layer.mlp.gate._forward_hooks) == 1 for layer in model.model.layers)  # balance's only
    balance.remove()


def test_custom_loop_losses_are_identical_with_and_without_the_monitor(tmp_path, tokenizer, corpus, probe):
    plain, _ = custom_loop(lab_model(tokenizer, attention_dropout=0.2), tokenizer, corpus, steps=30)
    model = lab_model(tokenizer, attention_dropout=0.2)
    monitor = PathwayMonitor(model, probe, tokenizer, every_n_steps=5, max_length=32,
                             output=tmp_path / "monitor.parquet", flush_rows=1)
    monitored, logged = custom_loop(model, tokenizer, corpus, steps=30, monitor=monitor)
    assert monitored == plain  # step by step, bit for bit
    assert sorted(logged) == [5, 10, 15, 20, 25, 30]
    assert monitor.step(31) == {}
    assert monitor.step(30) == logged[30]  # the same step is not measured twice
    parts = sorted((tmp_path / ".monitor.parquet.parts").glob("part-*.parquet"))
    assert len(parts) == 6 and not (tmp_path / "monitor.parquet").exists()
    written = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    assert monitor.close() == tmp_path / "monitor.parquet"
    table = pd.read_parquet(tmp_path / "monitor.parquet")
    assert sorted(table["step"].unique()) == [5, 10, 15, 20, 25, 30]
    pd.testing.assert_frame_equal(table, written)
    assert not (tmp_path / ".monitor.parquet.parts").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert set(table["layer"]) == {"all", "0", "1", "2"}
    assert table.duplicated(KEYS).sum() == 0


def test_dense_model_fails_with_the_routers_error(tokenizer, probe):
    from transformers import LlamaConfig, LlamaForCausalLM

    dense = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2))
    with pytest.raises(GrokpathError) as expected:
        find_routers(dense)
    with pytest.raises(GrokpathError) as raised:
        PathwayMonitor(dense, probe, tokenizer)
    assert str(raised.value) == str(expected.value)
    assert "\n" not in str(raised.value) and "LlamaForCausalLM" in str(raised.value)


def test_preserved_rng_state_restores_the_generator():
    torch.manual_seed(11)
    before = torch.get_rng_state()
    with preserved_rng_state():
        torch.rand(5)
    assert torch.equal(torch.get_rng_state(), before)


def test_monitor_calls_do_not_recompile_a_compiled_training_forward(tokenizer, corpus, probe):
    """The lab compiles its training forward (`pretrain.compile`); the monitor's hooks and mode
    switches come and go between steps, so they must leave dynamo's guards as they were."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = lab_model(tokenizer)
    balance = RouterBalance(model, MODEL["top_k"], MODEL["num_experts"])
    forward = torch.compile(model, backend="eager")  # dynamo's guards without inductor's compile time
    ids, attention, labels = train_tensors(tokenizer, corpus)
    monitor = PathwayMonitor(model, probe, tokenizer, every_n_steps=2, max_length=32)
    for step in range(1, 6):
        model.train()
        balance.reset()
        out = forward(input_ids=ids[:16], attention_mask=attention[:16], labels=labels[:16])
        (out.loss + 0.01 * balance.loss(attention[:16])).backward()
        monitor.step(step)
    assert counters["stats"]["unique_graphs"] == 1
    balance.remove()
