"""Router discovery and pathway extraction on tiny random models (CPU, seconds)."""

from __future__ import annotations

import json
import runpy
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    OlmoeConfig,
    OlmoeForCausalLM,
    PreTrainedTokenizerFast,
)

from grokpath.errors import GrokpathError
from grokpath.routing.extract import EXTRACTION_COLUMNS, PATHWAY_COLUMNS, extract_pathways, select_samples
from grokpath.routing.pathways import (
    id_pathways,
    load_pathway_table,
    read_extraction_metadata,
    top_k_ids,
)
from grokpath.routing.routers import (
    find_routers,
    read_router_weights,
    router_spec_from_checkpoint,
    write_router_table,
)

N_WORDS = 61
VOCAB = 64


def word_tokenizer(padding_side: str = "right") -> PreTrainedTokenizerFast:
    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2, **{f"w{i}": i + 3 for i in range(N_WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        eos_token="[EOS]",
        padding_side=padding_side,
    )


def tiny_olmoe(
    layers: int = 4, experts: int = 8, top_k: int = 2, seed: int = 0
) -> OlmoeForCausalLM:
    config = OlmoeConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=8,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        num_experts=experts,
        num_experts_per_tok=top_k,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = OlmoeForCausalLM(config).eval()
    # the default init (std 0.02) gives near-uniform routing; std 1 makes routes distinct
    for layer in model.model.layers:
        torch.nn.init.normal_(layer.mlp.gate.weight, std=1.0)
    return model


def olmoe_shaped() -> OlmoeForCausalLM:
    """OLMoE's routing shape (16 layers, 64 experts, top-8) with a tiny hidden size."""
    return tiny_olmoe(layers=16, experts=64, top_k=8)


def random_samples(
    n: int, seed: int = 0, max_words: int = 30, domains=("math", "code")
) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "sample_id": f"s{i:03d}",
            "domain": domains[i % len(domains)],
            "text": " ".join(f"w{j}" for j in rng.integers(0, N_WORDS, rng.integers(1, max_words))),
        }
        for i in range(n)
    ]


def extract(model, tokenizer, samples, path, batch_size, max_length=40):
    extract_pathways(
        model,
        tokenizer,
        samples,
        path,
        step=7,
        batch_size=batch_size,
        max_length=max_length,
        device="cpu",
        progress=False,
    )
    return load_pathway_table(path)


def by_sample(table):
    return {sid: i for i, sid in enumerate(table.sample_ids)}


# ---------------------------------------------------------------- routers


def test_find_routers_on_olmoe():
    model = tiny_olmoe(layers=3, experts=8, top_k=2)
    spec = find_routers(model)
    assert spec.layers == [0, 1, 2]
    assert spec.num_experts == 8 and spec.top_k == 2 and spec.norm_topk_prob is False
    assert all(w.shape == (8, 32) for w in spec.weights)
    assert spec.weights[1] is not None and torch.equal(
        spec.weights[1], model.model.layers[1].mlp.gate.weight
    )
    assert find_routers(model.model).layers == [0, 1, 2]  # the backbone alone works too


def test_dense_model_raises_one_line():
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    with pytest.raises(GrokpathError) as err:
        find_routers(LlamaForCausalLM(config))
    message = str(err.value)
    assert "LlamaForCausalLM" in message and "mlp.gate" in message and "\n" not in message


def test_module_without_routers_raises():
    with pytest.raises(GrokpathError, match="Linear"):
        find_routers(torch.nn.Linear(2, 2))


def test_router_spec_from_checkpoint_reads_only_the_gates(tmp_path):
    model = tiny_olmoe(layers=3, experts=8, top_k=2)
    model.save_pretrained(tmp_path)
    spec = router_spec_from_checkpoint(tmp_path)
    assert spec.layers == [0, 1, 2] and spec.top_k == 2
    for layer, weight in zip(model.model.layers, spec.weights):
        assert torch.equal(weight, layer.mlp.gate.weight.detach())


def test_router_table_round_trip(tmp_path):
    """write_router_table -> read_router_weights (numpy, for the metric jobs) keeps every value."""
    model = tiny_olmoe(layers=3, experts=8, top_k=2)
    spec = find_routers(model)
    write_router_table(spec, tmp_path / "step1.routers.parquet")
    routers = read_router_weights(tmp_path / "step1.routers.parquet")
    assert routers.layers == [0, 1, 2] and routers.top_k == 2
    assert routers.weights.dtype == np.float32 and routers.weights.shape == (3, 8, 32)
    assert np.array_equal(routers.weights, spec.stacked_weights().numpy())


# ---------------------------------------------------------------- extraction


def test_extraction_columns_and_values(tmp_path):
    model, tokenizer = tiny_olmoe(), word_tokenizer()
    samples = random_samples(12) + [{"sample_id": "empty", "domain": "math", "text": ""}]
    path = tmp_path / "p.parquet"
    extract(model, tokenizer, samples, path, batch_size=5)
    frame = pq.read_table(path).to_pandas()
    assert list(frame.columns) == EXTRACTION_COLUMNS
    assert EXTRACTION_COLUMNS[: len(PATHWAY_COLUMNS)] == PATHWAY_COLUMNS  # what readers need
    assert (frame["weights_kind"] == "scores").all() and (frame["shared_expert"] == "none").all()
    assert frame["shared_gate"].isna().all()
    meta = read_extraction_metadata(path)
    assert meta["family"] == "olmoe" and meta["weights"] == "scores" and meta["dense_layers"] == []
    assert len(frame) == 12 * 4 and "empty" not in set(frame["sample_id"])  # empty texts skipped
    assert (frame["step"] == 7).all()
    table = load_pathway_table(path)
    np.testing.assert_allclose(table.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert (table.entropy >= 0).all() and (table.entropy <= np.log(8) + 1e-5).all()
    expected_tokens = {s["sample_id"]: len(s["text"].split()) for s in samples}
    assert all(n == expected_tokens[sid] for sid, n in zip(table.sample_ids, table.n_tokens))


def reference_from_router_logits(model, tokenizer, text):
    """Averaged softmax and mean entropy from output_router_logits, one unpadded sample."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model(input_ids=ids, output_router_logits=True, use_cache=False)
    probs = [torch.softmax(logits.float(), dim=-1) for logits in out.router_logits]
    weights = torch.stack([p.mean(dim=0) for p in probs]).numpy()
    entropy = torch.stack([-(p * p.log()).sum(-1).mean() for p in probs]).numpy()
    return weights, entropy


def test_hooks_match_output_router_logits(tmp_path):
    model, tokenizer = tiny_olmoe(), word_tokenizer()
    samples = random_samples(6, seed=3)
    table = extract(model, tokenizer, samples, tmp_path / "p.parquet", batch_size=6)
    index = by_sample(table)
    for sample in samples:
        weights, entropy = reference_from_router_logits(model, tokenizer, sample["text"])
        np.testing.assert_allclose(table.weights[index[sample["sample_id"]]], weights, atol=1e-5)
        np.testing.assert_allclose(table.entropy[index[sample["sample_id"]]], entropy, atol=1e-5)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_padding_invariance(tmp_path, padding_side):
    model, tokenizer = tiny_olmoe(), word_tokenizer(padding_side)
    samples = random_samples(10, seed=1)
    alone = extract(model, tokenizer, samples, tmp_path / "alone.parquet", batch_size=1)
    batched = extract(model, tokenizer, samples, tmp_path / "batched.parquet", batch_size=10)
    assert batched.n_tokens.sum() < 10 * batched.n_tokens.max()  # the batch really was padded
    a, b = by_sample(alone), by_sample(batched)
    for sid in a:
        np.testing.assert_allclose(batched.weights[b[sid]], alone.weights[a[sid]], atol=2e-6)
        np.testing.assert_allclose(batched.entropy[b[sid]], alone.entropy[a[sid]], atol=2e-6)


def test_truncation_to_max_length(tmp_path):
    model, tokenizer = tiny_olmoe(), word_tokenizer()
    samples = [{"sample_id": "long", "domain": "math", "text": " ".join(["w1"] * 30)}]
    table = extract(model, tokenizer, samples, tmp_path / "p.parquet", batch_size=1, max_length=9)
    assert table.n_tokens.tolist() == [9]


def test_olmoe_routing_shape_spans_all_experts(tmp_path):
    model, tokenizer = olmoe_shaped(), word_tokenizer()
    samples = random_samples(24, seed=2, max_words=16)
    table = extract(model, tokenizer, samples, tmp_path / "p.parquet", batch_size=12)
    assert table.weights.shape == (24, 16, 64)
    assert table.layers.tolist() == list(range(16))
    seen_in_pathways = {e for path in id_pathways(table.weights) for layer in path for e in layer}
    assert seen_in_pathways == set(range(64))
    assert set(np.unique(top_k_ids(table.weights, 8))) == set(range(64))


def test_sample_without_text_is_rejected(tmp_path):
    with pytest.raises(GrokpathError, match="text"):
        extract(
            tiny_olmoe(),
            word_tokenizer(),
            [{"sample_id": "x", "domain": "d"}],
            tmp_path / "p.parquet",
            batch_size=1,
        )
    assert not (tmp_path / "p.parquet").exists()


# ---------------------------------------------------------------- sample selection


def memorization_frame(n_per_domain: int, n_memorized: int) -> pd.DataFrame:
    rows = []
    for domain in ("code", "math"):
        for i in range(n_per_domain):
            memorized = i < n_memorized
            rows.append(
                {
                    "domain": domain,
                    "sample_id": f"{domain}-{i:03d}",
                    "t_star": (100 * (1 + i % 2)) if memorized else None,
                    "memorized": memorized,
                }
            )
    frame = pd.DataFrame(rows)
    frame["t_star"] = frame["t_star"].astype("Int64")
    return frame


def corpus_rows(frame: pd.DataFrame) -> dict[str, list[dict]]:
    return {
        domain: [
            {"sample_id": sid, "domain": domain, "text": f"w{k % N_WORDS} w1"}
            for k, sid in enumerate(group["sample_id"])
        ]
        for domain, group in frame.groupby("domain")
    }


def test_select_samples_draws_a_seeded_subset_per_domain():
    rows = corpus_rows(memorization_frame(n_per_domain=40, n_memorized=5))
    chosen = select_samples(rows, max_per_domain=12, seed=3)
    assert len(chosen) == 24
    assert {s["domain"] for s in chosen} == {"code", "math"}
    ids = [s["sample_id"] for s in chosen]
    assert len(set(ids)) == 24 and set(ids) <= {r["sample_id"] for d in rows.values() for r in d}
    assert chosen == select_samples(rows, max_per_domain=12, seed=3)
    assert chosen != select_samples(rows, max_per_domain=12, seed=4)


def test_select_samples_without_cap_takes_every_sample():
    rows = corpus_rows(memorization_frame(n_per_domain=40, n_memorized=30))
    chosen = select_samples(rows, max_per_domain=None, seed=0)
    assert sorted(s["sample_id"] for s in chosen) == sorted(r["sample_id"] for d in rows.values() for r in d)


def test_select_samples_rejects_an_empty_domain():
    with pytest.raises(GrokpathError, match="'math': empty training sample set"):
        select_samples({"code": [{"sample_id": "c", "text": "w1"}], "math": []}, None, 0)


# ---------------------------------------------------------------- workflow scripts end to end


def run_script(script: str, monkeypatch, **kwargs) -> None:
    argv = [script] + [f"{k}={v}" for k, v in kwargs.items()]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(script, run_name="__main__")


def test_workflow_scripts_end_to_end(tmp_path, monkeypatch):
    frame = memorization_frame(n_per_domain=8, n_memorized=4)
    frame.to_parquet(tmp_path / "memorization.parquet")
    for domain, rows in corpus_rows(frame).items():
        (tmp_path / "corpus" / domain).mkdir(parents=True)
        (tmp_path / "corpus" / domain / "train.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
    tokenizer = word_tokenizer()
    checkpoints = []
    for step, seed in ((100, 0), (200, 1)):
        ckpt = tmp_path / "checkpoints" / f"step{step}"
        tiny_olmoe(seed=seed).save_pretrained(ckpt)
        tokenizer.save_pretrained(ckpt)
        (ckpt / "grokpath_checkpoint.json").write_text(json.dumps({"step": step, "source": "lab"}))
        checkpoints.append(ckpt)
    chunk = tmp_path / "pathways" / "steps100-200"  # both checkpoints in one job, as the rule's chunks
    run_script(
        "workflow_scripts/extract_pathways.py",
        monkeypatch,
        checkpoints="[" + ",".join(map(str, checkpoints)) + "]",
        manifest=tmp_path / "corpus" / "manifest.json",
        pathways=chunk,
        domains="[code, math]",
        max_per_domain=8,
        seed=0,
        batch_size=4,
        max_length=16,
        device="cpu",
    )
    assert sorted(p.name for p in chunk.iterdir()) == [
        "step100.parquet", "step100.routers.parquet", "step200.parquet", "step200.routers.parquet",
    ]
    out = {
        name: tmp_path / f"{name}.parquet" for name in ("edit_distance", "consistency", "routing")
    }
    run_script(
        "workflow_scripts/pathway_metrics.py",
        monkeypatch,
        pathways=chunk,  # the folder: its step tables are found inside
        memorization=tmp_path / "memorization.parquet",
        routers=chunk,
        threshold=0.7,
        max_pairs=1000,
        seed=0,
        **out,
    )
    edit = pd.read_parquet(out["edit_distance"])
    assert set(edit["step"]) == {100, 200}
    assert {"all", "memorized", "100", "200"} <= set(edit["group"])
    assert {"math", "code", "all", "code|math"} == set(edit["domain"])
    consistency = pd.read_parquet(out["consistency"])
    assert {"consistency_norm_mean_cos", "inconsistency_paper_formula"} <= set(
        consistency["metric"]
    )
    baselines = pd.read_parquet(out["routing"])
    final = baselines[(baselines["metric"] == "router_saturation") & (baselines["step"] == 200)]
    np.testing.assert_allclose(final["value"], 1.0)  # the final step saturates against itself
