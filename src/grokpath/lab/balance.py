"""A cheap load-balancing loss for pretraining, from forward hooks on the routers.

Same quantity as transformers' `load_balancing_loss_func` (Switch Transformer: E * sum_e f_e P_e
over real tokens, averaged over layers), but computed per layer on the logits the gate already
produced; asking the model for `output_router_logits=True` made each CPU step ~35 % slower.

Only passes with gradients enabled are recorded: a pass under `torch.inference_mode` or
`torch.no_grad` (the accuracy probe, `grokpath.routing.monitor`) cannot feed a loss that trains, so it
must not enter the balance loss of the next training step.
"""

from __future__ import annotations

import torch


class RouterBalance:
    def __init__(self, model, top_k: int, num_experts: int):
        self.top_k, self.num_experts = top_k, num_experts
        self.logits: list[torch.Tensor] = []
        self._handles = [
            layer.mlp.gate.register_forward_hook(self._record) for layer in model.model.layers
        ]

    def _record(self, _module, _inputs, output):
        if torch.is_grad_enabled():
            self.logits.append(output[0])

    def loss(self, token_mask: torch.Tensor) -> torch.Tensor:
        keep = token_mask.reshape(-1).bool()
        total = 0.0
        for logits in self.logits:
            probs = torch.softmax(logits[keep].float(), dim=-1)
            chosen = torch.topk(probs, self.top_k, dim=-1).indices
            counts = torch.zeros(self.num_experts, device=probs.device).index_add_(
                0, chosen.reshape(-1), torch.ones(chosen.numel(), device=probs.device)
            )
            fraction_routed = counts / chosen.numel()
            total = total + self.num_experts * torch.sum(fraction_routed * probs.mean(0))
        self.logits.clear()
        return total / max(1, len(self._handles))

    def reset(self) -> None:
        self.logits.clear()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
