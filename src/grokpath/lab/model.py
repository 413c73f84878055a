"""The lab model: a tiny `OlmoeForCausalLM` with OLMoE's architecture and our config's sizes."""

from __future__ import annotations

import torch
from transformers import OlmoeConfig, OlmoeForCausalLM

INIT_STD = 0.02  # transformers' default initializer_range for OLMoE


def olmoe_config(model: dict, vocab_size: int, pad_id: int, eos_id: int) -> OlmoeConfig:
    return OlmoeConfig(
        vocab_size=vocab_size,
        hidden_size=model["hidden_size"],
        intermediate_size=model["intermediate_size"],
        num_hidden_layers=model["num_layers"],
        num_attention_heads=model["num_heads"],
        num_key_value_heads=model["num_heads"],
        num_experts=model["num_experts"],
        num_experts_per_tok=model["top_k"],
        max_position_embeddings=model["max_position_embeddings"],
        router_aux_loss_coef=model["router_aux_loss_coef"],
        # OLMoE keeps the raw top-k softmax weights; so do we, to route like the real model.
        norm_topk_prob=False,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        # A larger initial weight scale puts training in the memorizing (lazy) regime first;
        # weight decay then shrinks the weights toward where the rule is learned (Omnigrok).
        initializer_range=INIT_STD * model.get("init_scale", 1.0),
    )


def init_lab_model(model: dict, vocab_size: int, pad_id: int, eos_id: int, seed: int) -> OlmoeForCausalLM:
    torch.manual_seed(seed)
    return OlmoeForCausalLM(olmoe_config(model, vocab_size, pad_id, eos_id))
