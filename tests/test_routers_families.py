"""Router adapters of every supported MoE family on tiny random models (CPU, seconds each).

Each family's model is built from its own transformers config class: 16 experts, top-4 (PhiMoE:
top-2, all its sparsemixer does), several MoE layers, dense layers interleaved where the family
has them. What is checked against the model itself, not against our own code:
- `topk`: per token, the experts and weights the MoE block hands its experts (a pre-hook on the
  experts module), scattered and normalised;
- `scores`: the family's gate function of the router's own input and weights, by hand;
- DeepSeek-V3: both kinds by a hand computation of its routing (sigmoid, correction bias,
  group-limited top-k, scaling factor) on one token;
- Qwen2-MoE: the shared expert's sigmoid gate lands in `shared_gate`;
- each family through the extraction and metrics workflow scripts, expert ids spanning all experts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import transformers as tf

from grokpath.errors import GrokpathError
from grokpath.routing.extract import extract_pathways
from grokpath.routing.pathways import id_pathways, load_pathway_table, read_extraction_metadata
from grokpath.routing.routers import ADAPTERS, find_routers, router_spec_from_checkpoint
from test_routers_extract import (
    N_WORDS,
    VOCAB,
    corpus_rows,
    memorization_frame,
    random_samples,
    run_script,
    word_tokenizer,
)

EXPERTS, TOP_K = 16, 4
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=64,
    pad_token_id=0,
    bos_token_id=None,
    eos_token_id=2,
)
MLA = dict(kv_lora_rank=8, q_lora_rank=16, qk_rope_head_dim=4, v_head_dim=8, qk_nope_head_dim=4)


@dataclass(frozen=True)
class Family:
    config: tf.PretrainedConfig
    moe_layers: list[int]
    dense_layers: list[int] = field(default_factory=list)
    scores: str | None = "softmax"
    shared_expert: str = "none"
    top_k: int = TOP_K


def families() -> dict[str, Family]:
    moe = dict(num_experts_per_tok=TOP_K)
    return {
        "olmoe": Family(
            tf.OlmoeConfig(
                **COMMON, **moe, intermediate_size=8, num_hidden_layers=3, num_experts=EXPERTS
            ),
            [0, 1, 2],
        ),
        "flex_olmo": Family(
            tf.FlexOlmoConfig(
                **COMMON, **moe, intermediate_size=8, num_hidden_layers=3, num_experts=EXPERTS
            ),
            [0, 1, 2],
        ),
        "mixtral": Family(
            tf.MixtralConfig(
                **COMMON, **moe, intermediate_size=8, num_hidden_layers=3, num_local_experts=EXPERTS
            ),
            [0, 1, 2],
        ),
        "qwen2_moe": Family(  # layer 2 dense by mlp_only_layers
            tf.Qwen2MoeConfig(
                **COMMON,
                **moe,
                intermediate_size=16,
                moe_intermediate_size=8,
                shared_expert_intermediate_size=16,
                num_hidden_layers=4,
                num_experts=EXPERTS,
                mlp_only_layers=[2],
            ),
            [0, 1, 3],
            dense_layers=[2],
            shared_expert="gated",
        ),
        "qwen3_moe": Family(  # every second layer sparse (decoder_sparse_step)
            tf.Qwen3MoeConfig(
                **COMMON,
                **moe,
                head_dim=8,
                intermediate_size=16,
                moe_intermediate_size=8,
                num_hidden_layers=6,
                num_experts=EXPERTS,
                decoder_sparse_step=2,
                norm_topk_prob=True,
            ),
            [1, 3, 5],
            dense_layers=[0, 2, 4],
        ),
        "deepseek_v2": Family(  # group-limited greedy top-k, first layer dense
            tf.DeepseekV2Config(
                **COMMON,
                **moe,
                **MLA,
                intermediate_size=16,
                moe_intermediate_size=8,
                num_hidden_layers=4,
                n_routed_experts=EXPERTS,
                n_shared_experts=1,
                first_k_dense_replace=1,
                topk_method="group_limited_greedy",
                n_group=4,
                topk_group=2,
                routed_scaling_factor=1.5,
            ),
            [1, 2, 3],
            dense_layers=[0],
            shared_expert="always_on",
        ),
        "deepseek_v3": Family(
            tf.DeepseekV3Config(
                **COMMON,
                **moe,
                **MLA,
                intermediate_size=16,
                moe_intermediate_size=8,
                num_hidden_layers=4,
                n_routed_experts=EXPERTS,
                n_shared_experts=1,
                first_k_dense_replace=1,
                n_group=4,
                topk_group=2,
                routed_scaling_factor=2.5,
                norm_topk_prob=True,
            ),
            [1, 2, 3],
            dense_layers=[0],
            scores="sigmoid",
            shared_expert="always_on",
        ),
        "gpt_oss": Family(
            tf.GptOssConfig(
                **COMMON,
                **moe,
                head_dim=8,
                intermediate_size=8,
                num_hidden_layers=3,
                num_local_experts=EXPERTS,
                sliding_window=8,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            ),
            [0, 1, 2],
            scores=None,
        ),
        "granitemoe": Family(
            tf.GraniteMoeConfig(
                **COMMON, **moe, intermediate_size=8, num_hidden_layers=3, num_local_experts=EXPERTS
            ),
            [0, 1, 2],
            scores=None,
        ),
        "phimoe": Family(
            tf.PhimoeConfig(
                **COMMON,
                intermediate_size=8,
                num_hidden_layers=3,
                num_local_experts=EXPERTS,
                num_experts_per_tok=2,
            ),
            [0, 1, 2],
            scores=None,
            top_k=2,
        ),
    }


FAMILIES = families()
NAMES = sorted(FAMILIES)


def tiny_model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(FAMILIES[name].config).eval()
    # the default init (std 0.02) routes near-uniformly; std 1 makes routes distinct
    with torch.no_grad():
        for router in find_routers(model).modules:
            router.weight.normal_(std=1.0)
            if getattr(router, "bias", None) is not None:  # gpt-oss
                router.bias.normal_(std=0.5)
            if hasattr(router, "e_score_correction_bias"):  # DeepSeek-V3: chooses, never weighs
                router.e_score_correction_bias.normal_(std=0.3)
    return model


def one_token_samples(n: int = 40) -> list[dict]:
    """Single-word samples: a table row is then exactly one token's routing."""
    return [
        {"sample_id": f"t{i:02d}", "domain": "math", "text": f"w{i % N_WORDS}"} for i in range(n)
    ]


def extract(model, samples, path, weights, batch_size=8, tokenizer=None):
    extract_pathways(
        model,
        tokenizer or word_tokenizer(),
        samples,
        path,
        step=3,
        batch_size=batch_size,
        max_length=24,
        device="cpu",
        progress=False,
        weights=weights,
    )
    return load_pathway_table(path)


def experts_of(block: torch.nn.Module) -> torch.nn.Module:
    return block.experts


def moe_blocks(model, name):
    gate_path = ADAPTERS[name].gate_path
    block_path = gate_path.rsplit(".", 1)[0]
    layers = model.model.layers
    return [getattr(layers[i], block_path) for i in FAMILIES[name].moe_layers]


def reference_routing(model, name, samples):
    """Per token (= per one-word sample), per MoE layer: what the router got (its input) and what
    the experts got (ids, weights), from hooks on the model's own modules."""
    tokenizer = word_tokenizer()
    ids = torch.tensor([tokenizer(s["text"])["input_ids"] for s in samples])  # (n, 1)
    assert ids.shape == (len(samples), 1)
    spec = find_routers(model)
    router_inputs, expert_args, shared_gate_inputs = {}, {}, {}
    handles = []
    for position, (router, block) in enumerate(zip(spec.modules, moe_blocks(model, name))):
        handles.append(
            router.register_forward_pre_hook(
                lambda m, args, p=position: router_inputs.__setitem__(p, args[0].detach().clone())
            )
        )
        handles.append(
            experts_of(block).register_forward_pre_hook(
                lambda m, args, kwargs, p=position: expert_args.__setitem__(
                    p, (args[1].detach().clone(), args[2].detach().float().clone())
                ),
                with_kwargs=True,
            )
        )
        if hasattr(block, "shared_expert_gate"):
            handles.append(
                block.shared_expert_gate.register_forward_pre_hook(
                    lambda m, args, p=position: shared_gate_inputs.__setitem__(p, args[0].clone())
                )
            )
    try:
        with torch.inference_mode():
            model.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return spec, router_inputs, expert_args, shared_gate_inputs


def scattered(ids: torch.Tensor, weights: torch.Tensor, n_experts: int) -> np.ndarray:
    out = torch.zeros(ids.shape[0], n_experts).scatter_add_(1, ids.long(), weights.float())
    return (out / out.sum(dim=-1, keepdim=True)).numpy()


# ---------------------------------------------------------------- discovery


@pytest.mark.parametrize("name", NAMES)
def test_find_routers_per_family(name):
    family = FAMILIES[name]
    model = tiny_model(name)
    assert model.config.model_type == name
    spec = find_routers(model)
    assert spec.family == name
    assert spec.layers == family.moe_layers and spec.dense_layers == family.dense_layers
    assert spec.num_experts == EXPERTS and spec.top_k == family.top_k
    assert spec.score_function == family.scores and spec.shared_expert == family.shared_expert
    assert spec.weights_kind("scores") == ("topk" if family.scores is None else "scores")
    assert spec.weights_kind("topk") == "topk"
    assert all(tuple(w.shape) == (EXPERTS, 32) for w in spec.weights)


def test_unsupported_family_fails_with_one_line_listing_the_supported():
    config = tf.JetMoeConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_key_value_heads=2,
        kv_channels=8,
        intermediate_size=16,
        num_local_experts=EXPERTS,
        num_experts_per_tok=2,
    )
    with pytest.raises(GrokpathError) as err:
        find_routers(tf.AutoModelForCausalLM.from_config(config))
    message = str(err.value)
    assert "\n" not in message and "'jetmoe'" in message
    assert all(name in message for name in NAMES)


def test_unknown_weights_kind_is_rejected(tmp_path):
    with pytest.raises(GrokpathError, match="expected one of scores, topk"):
        extract(tiny_model("olmoe"), one_token_samples(2), tmp_path / "p.parquet", "softmax")
    assert not (tmp_path / "p.parquet").exists()


@pytest.mark.parametrize("name", NAMES)
def test_router_spec_from_checkpoint_reads_only_the_gates(tmp_path, monkeypatch, name):
    """Also where transformers saves the router under its hub name (Mixtral, PhiMoE, Granite)."""
    model = tiny_model(name)
    model.save_pretrained(tmp_path)

    def no_full_load(*args, **kwargs):
        raise AssertionError("loaded the whole model")

    monkeypatch.setattr(tf.AutoModelForCausalLM, "from_pretrained", no_full_load)
    spec = router_spec_from_checkpoint(tmp_path)
    assert spec.layers == FAMILIES[name].moe_layers and spec.top_k == FAMILIES[name].top_k
    for ours, theirs in zip(spec.weights, find_routers(model).weights):
        assert torch.equal(ours, theirs)


# ---------------------------------------------------------------- against the model's own routing


@pytest.mark.parametrize("name", NAMES)
def test_topk_is_what_the_experts_receive(tmp_path, name):
    model, samples = tiny_model(name), one_token_samples()
    table = extract(model, samples, tmp_path / "topk.parquet", "topk")
    spec, _, expert_args, _ = reference_routing(model, name, samples)
    assert table.sample_ids.tolist() == [s["sample_id"] for s in samples]  # all of length 1
    assert (table.n_tokens == 1).all()
    for position in range(len(spec.layers)):
        ids, weights = expert_args[position]
        assert ids.shape == (len(samples), FAMILIES[name].top_k)
        expected = scattered(ids, weights, EXPERTS)
        # two float32 forwards with different op orders: round-off reaches ~1e-6 (seen in CI: 1.04e-6)
        np.testing.assert_allclose(table.weights[:, position], expected, atol=1e-5)
        chosen = [set(row.tolist()) for row in ids]
        assert [set(np.flatnonzero(row).tolist()) for row in table.weights[:, position]] == chosen
    frame = pq.read_table(tmp_path / "topk.parquet").to_pandas()
    assert (frame["weights_kind"] == "topk").all()


@pytest.mark.parametrize("name", [n for n in NAMES if FAMILIES[n].scores is not None])
def test_scores_are_the_family_gate_function_of_the_router_input(tmp_path, name):
    model, samples = tiny_model(name), one_token_samples()
    table = extract(model, samples, tmp_path / "scores.parquet", "scores")
    spec, router_inputs, expert_args, _ = reference_routing(model, name, samples)
    for position, weight in enumerate(spec.weights):
        logits = router_inputs[position].reshape(len(samples), -1).float() @ weight.float().T
        if FAMILIES[name].scores == "softmax":
            expected = torch.softmax(logits, dim=-1)
        else:
            expected = torch.sigmoid(logits)
            expected = expected / expected.sum(dim=-1, keepdim=True)
        np.testing.assert_allclose(table.weights[:, position], expected.numpy(), atol=1e-5)
        if name in ("olmoe", "flex_olmo", "mixtral", "qwen2_moe", "qwen3_moe"):
            # plain top-k of the scores: the chosen experts are the k highest scores
            top = torch.topk(expected, FAMILIES[name].top_k, dim=-1).indices.sort(-1).values
            assert torch.equal(top, expert_args[position][0].sort(-1).values)
    np.testing.assert_allclose(table.weights.sum(-1), 1.0, atol=1e-5)
    meta = read_extraction_metadata(tmp_path / "scores.parquet")
    assert meta["weights"] == "scores" and meta["score_function"] == FAMILIES[name].scores


@pytest.mark.parametrize("name", [n for n in NAMES if FAMILIES[n].scores is None])
def test_families_without_scores_write_topk_and_say_so(tmp_path, name, caplog):
    path = tmp_path / "p.parquet"
    table = extract(tiny_model(name), one_token_samples(6), path, "scores")
    assert "writing topk weights" in caplog.text
    meta = read_extraction_metadata(path)
    assert meta["weights"] == "topk" and meta["weights_requested"] == "scores"
    assert (pq.read_table(path).to_pandas()["weights_kind"] == "topk").all()
    assert ((table.weights > 0).sum(-1) == FAMILIES[name].top_k).all()


def deepseek_v3_by_hand(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, config):
    """One token's DeepSeek-V3 routing, written out from the paper/reference implementation."""
    scores = 1.0 / (1.0 + np.exp(-(weight.astype(np.float64) @ x.astype(np.float64))))
    choice = scores + bias
    per_group = EXPERTS // config.n_group
    groups = choice.reshape(config.n_group, per_group)
    group_score = np.sort(groups, axis=1)[:, -2:].sum(axis=1)  # sum of each group's best two
    kept_groups = np.argsort(-group_score)[: config.topk_group]
    allowed = np.full(EXPERTS, -np.inf)
    for g in kept_groups:
        allowed[g * per_group : (g + 1) * per_group] = choice[g * per_group : (g + 1) * per_group]
    chosen = np.argsort(-allowed)[: config.num_experts_per_tok]
    applied = scores[chosen] / scores[chosen].sum() * config.routed_scaling_factor
    topk = np.zeros(EXPERTS)
    topk[chosen] = applied / applied.sum()
    return scores / scores.sum(), topk, set(chosen.tolist())


def test_deepseek_v3_scores_and_topk_by_hand_on_one_token(tmp_path):
    name = "deepseek_v3"
    model = tiny_model(name)
    config = model.config
    sample = [{"sample_id": "one", "domain": "math", "text": "w5"}]
    scores_table = extract(model, sample, tmp_path / "scores.parquet", "scores")
    topk_table = extract(model, sample, tmp_path / "topk.parquet", "topk")
    spec, router_inputs, expert_args, _ = reference_routing(model, name, sample)
    correction_used = False
    for position, router in enumerate(spec.modules):
        x = router_inputs[position].reshape(-1).numpy()
        weight = router.weight.detach().numpy()
        bias = router.e_score_correction_bias.detach().numpy()
        scores, topk, chosen = deepseek_v3_by_hand(x, weight, bias, config)
        np.testing.assert_allclose(scores_table.weights[0, position], scores, atol=1e-6)
        np.testing.assert_allclose(topk_table.weights[0, position], topk, atol=1e-6)
        assert chosen == set(expert_args[position][0][0].tolist())  # what the experts got
        # the weights applied are the normalised sigmoid scores times the scaling factor
        applied = expert_args[position][1][0].numpy()
        sig = 1.0 / (1.0 + np.exp(-(weight @ x)))
        ids = expert_args[position][0][0].numpy()
        np.testing.assert_allclose(
            applied, sig[ids] / sig[ids].sum() * config.routed_scaling_factor, rtol=1e-5
        )
        by_scores = set(np.argsort(-sig)[: config.num_experts_per_tok].tolist())
        correction_used |= by_scores != chosen
    assert correction_used  # the bias and groups did change a choice: the test has teeth
    meta = read_extraction_metadata(tmp_path / "scores.parquet")
    assert meta["dense_layers"] == [0] and meta["shared_expert"] == "always_on"
    frame = pq.read_table(tmp_path / "topk.parquet").to_pandas()
    assert (frame["shared_expert"] == "always_on").all() and frame["shared_gate"].isna().all()


def test_qwen2_moe_shared_expert_gate_lands_in_its_column(tmp_path):
    name = "qwen2_moe"
    model = tiny_model(name)
    with torch.no_grad():
        for block in moe_blocks(model, name):
            block.shared_expert_gate.weight.normal_(std=0.5)
    samples = random_samples(8, seed=4, max_words=12)
    path = tmp_path / "p.parquet"
    extract(model, samples, path, "scores", batch_size=8)  # padded batch
    frame = pq.read_table(path).to_pandas()
    assert (frame["shared_expert"] == "gated").all() and frame["shared_gate"].notna().all()
    tokenizer = word_tokenizer()
    for sample in samples:
        ids = torch.tensor([tokenizer(sample["text"])["input_ids"]])
        inputs = {}
        handles = [
            block.shared_expert_gate.register_forward_pre_hook(
                lambda m, args, p=p: inputs.__setitem__(p, args[0].clone())
            )
            for p, block in enumerate(moe_blocks(model, name))
        ]
        with torch.inference_mode():
            model.model(input_ids=ids, use_cache=False)
        for handle in handles:
            handle.remove()
        rows = frame[frame["sample_id"] == sample["sample_id"]]
        for position, block in enumerate(moe_blocks(model, name)):
            gate = torch.sigmoid(
                inputs[position] @ block.shared_expert_gate.weight.detach().T
            ).mean()
            assert rows["shared_gate"].iloc[position] == pytest.approx(float(gate), abs=1e-6)
    meta = read_extraction_metadata(path)
    assert meta["dense_layers"] == [2] and meta["shared_expert"] == "gated"


@pytest.mark.parametrize(
    "name,weights",
    [
        ("deepseek_v3", "scores"),
        ("deepseek_v3", "topk"),
        ("qwen2_moe", "scores"),
        ("gpt_oss", "topk"),
    ],
)
def test_padding_invariance_per_family(tmp_path, name, weights):
    model, tokenizer = tiny_model(name), word_tokenizer("left")
    samples = random_samples(8, seed=1, max_words=12)
    alone = extract(model, samples, tmp_path / "a.parquet", weights, 1, tokenizer)
    batched = extract(model, samples, tmp_path / "b.parquet", weights, 8, tokenizer)
    a = {s: i for i, s in enumerate(alone.sample_ids)}
    b = {s: i for i, s in enumerate(batched.sample_ids)}
    for sid in a:
        np.testing.assert_allclose(batched.weights[b[sid]], alone.weights[a[sid]], atol=2e-5)
        np.testing.assert_allclose(batched.entropy[b[sid]], alone.entropy[a[sid]], atol=2e-5)
    shared = [
        pd.read_parquet(tmp_path / f, columns=["sample_id", "shared_gate"])
        for f in ("a.parquet", "b.parquet")
    ]
    merged = shared[0].sort_values("sample_id", kind="stable").reset_index(drop=True)
    other = shared[1].sort_values("sample_id", kind="stable").reset_index(drop=True)
    np.testing.assert_allclose(merged["shared_gate"], other["shared_gate"], atol=2e-6)


# ---------------------------------------------------------------- workflow scripts, each family


@pytest.mark.parametrize("name", NAMES)
def test_family_through_extraction_and_metrics_scripts(tmp_path, monkeypatch, name):
    family = FAMILIES[name]
    frame = memorization_frame(n_per_domain=16, n_memorized=6)
    frame.to_parquet(tmp_path / "memorization.parquet")
    rows = corpus_rows(frame)
    rng = np.random.default_rng(0)
    for domain, domain_rows in rows.items():  # longer random texts than corpus_rows gives
        for row in domain_rows:
            row["text"] = " ".join(f"w{j}" for j in rng.integers(0, N_WORDS, rng.integers(4, 16)))
        (tmp_path / "corpus" / domain).mkdir(parents=True)
        (tmp_path / "corpus" / domain / "train.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in domain_rows)
        )
    tokenizer = word_tokenizer()
    weights = "scores" if family.scores else "topk"
    paths, routers, seconds = [], [], []
    for step, seed in ((100, 0), (200, 1)):
        ckpt = tmp_path / "checkpoints" / f"step{step}"
        tiny_model(name, seed=seed).save_pretrained(ckpt)
        tokenizer.save_pretrained(ckpt)
        (ckpt / "grokpath_checkpoint.json").write_text(json.dumps({"step": step, "source": "lab"}))
        folder = tmp_path / "pathways" / f"steps{step}"  # one job per checkpoint
        paths.append(folder / f"step{step}.parquet")
        routers.append(folder / f"step{step}.routers.parquet")
        start = time.perf_counter()
        run_script(
            "workflow_scripts/extract_pathways.py",
            monkeypatch,
            checkpoints=ckpt,
            manifest=tmp_path / "corpus" / "manifest.json",
            pathways=folder,
            domains="[code, math]",
            max_per_domain=16,
            seed=0,
            batch_size=8,
            max_length=16,
            device="cpu",
            weights=weights,
        )
        seconds.append(time.perf_counter() - start)
    print(
        f"\n{name}: {EXPERTS} experts, top-{family.top_k}, MoE layers {family.moe_layers}, "
        f"dense {family.dense_layers}; extraction script {max(seconds):.2f} s per checkpoint"
    )
    for path in paths:
        table = load_pathway_table(path)
        assert table.weights.shape == (32, len(family.moe_layers), EXPERTS)
        assert table.layers.tolist() == family.moe_layers
        seen = {e for p in id_pathways(table.weights) for layer in p for e in layer}
        assert seen == set(range(EXPERTS))  # expert ids span the model's experts
        meta = read_extraction_metadata(path)
        assert meta["family"] == name and meta["weights"] == weights
        assert meta["dense_layers"] == family.dense_layers
    spec = router_spec_from_checkpoint(tmp_path / "checkpoints" / "step200")
    assert spec.layers == family.moe_layers and spec.top_k == family.top_k
    out = {n: tmp_path / f"{n}.parquet" for n in ("edit_distance", "consistency", "routing")}
    run_script(
        "workflow_scripts/pathway_metrics.py",
        monkeypatch,
        pathways="[" + ",".join(str(p) for p in paths) + "]",
        memorization=tmp_path / "memorization.parquet",
        routers="[" + ",".join(str(p) for p in routers) + "]",
        threshold=0.7,
        max_pairs=1000,
        seed=0,
        **out,
    )
    edit = pd.read_parquet(out["edit_distance"])
    assert set(edit["step"]) == {100, 200} and edit["value"].notna().any()
    consistency = pd.read_parquet(out["consistency"])
    assert set(consistency["step"]) == {100, 200}
    routing = pd.read_parquet(out["routing"])
    final = routing[(routing["metric"] == "router_saturation") & (routing["step"] == 200)]
    np.testing.assert_allclose(final["value"], 1.0)
