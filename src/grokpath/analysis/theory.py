"""Theory toy (paper App. C.4, Fig 8): routing-path edit distance tracks the effective dimension.

A one-layer MoE whose router is frozen and random, in the NTK regime. With gates g_j(x) and
expert tangent kernels K_j, the model's tangent kernel on the training inputs is the routing kernel
    H_ab = sum_j g_j(x_a) g_j(x_b) K_j(x_a, x_b),
and the paper's generalization bound holds the effective dimension
    d_eff = Tr(H (H + lambda I)^-1) = sum_i mu_i / (mu_i + lambda)   (mu_i: eigenvalues of H).
Experts share one architecture, so at infinite width every K_j is the same kernel K and
H = (G G^T) * K (elementwise), G = the (samples x experts) gate matrix.

lambda is taken relative to the mean eigenvalue: d_eff is computed on H * n / Tr(H). Without
that, how peaked the gates are (sum_j g_j^2) rescales H as a whole and moves d_eff at a fixed
lambda for a reason that has nothing to do with how routes are shared.

Each seed draws 100-d Gaussian clusters (unit-variance centers plus noise), a random router W
(16 x 100), a shared preference b (one standard-normal logit per expert, the same for every
input) and a routing specificity rho from a range:
    g(x) = softmax(sharpness * (sqrt(1 - rho) b + sqrt(rho) z(x))),  z(x) = W x / sqrt(d (1 + noise^2)).
Both parts have unit variance per expert, so rho moves routing from shared (rho = 0: every input
takes the same path, distance 0, H proportional to K) to input-specific (rho = 1) while the
logits' spread, and with it the typical path length, stays put. A sample's path is the paper's:
experts by weight until their cumulative weight exceeds the threshold. The seed's point is
(mean pairwise char-level edit distance over all pairs of paths, d_eff).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from grokpath.errors import GrokpathError
from grokpath.routing.metrics import mean_pathway_distance
from grokpath.routing.pathways import id_pathways

TOY_COLUMNS = [
    "seed", "routing_specificity", "edit_distance", "effective_dim", "mean_path_length",
    "n_samples", "n_experts", "dim",
]  # fmt: skip
EXPERT_KERNELS = ("relu_ntk", "linear")


@dataclass(frozen=True)
class ToySetup:
    n_samples: int
    dim: int
    n_experts: int
    n_clusters: int
    cluster_noise: float  # within-cluster std relative to the (unit-variance) cluster centers
    sharpness: float  # inverse temperature of the router softmax
    routing_specificity: tuple[float, float]  # rho ~ Uniform(low, high) per seed, within [0, 1]
    ridge: float  # lambda, relative to the mean eigenvalue of H
    threshold: float  # the path keeps experts until their cumulative weight exceeds this
    expert_kernel: str = "relu_ntk"

    def __post_init__(self):
        if self.expert_kernel not in EXPERT_KERNELS:
            raise GrokpathError(
                f"theory toy expert_kernel {self.expert_kernel!r}: expected one of {EXPERT_KERNELS}"
            )
        if self.n_samples < 2 or self.n_clusters < 1 or self.ridge <= 0:
            raise GrokpathError("theory toy: needs n_samples >= 2, n_clusters >= 1, ridge > 0")
        low, high = self.routing_specificity
        if not 0 <= low <= high <= 1:
            raise GrokpathError(
                f"theory toy routing_specificity {list(self.routing_specificity)}: "
                "expected [low, high] with 0 <= low <= high <= 1"
            )


def gaussian_clusters(
    n_samples: int, dim: int, n_clusters: int, noise: float, rng: np.random.Generator
) -> np.ndarray:
    centers = rng.standard_normal((n_clusters, dim))
    labels = rng.integers(0, n_clusters, size=n_samples)
    return centers[labels] + noise * rng.standard_normal((n_samples, dim))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def gates(
    x: np.ndarray, router: np.ndarray, bias: np.ndarray, specificity: float, sharpness: float,
    noise: float,
) -> np.ndarray:  # fmt: skip
    """(samples, experts) softmax gates mixing a shared preference with input-driven logits."""
    input_logits = x @ router.T / np.sqrt(x.shape[1] * (1 + noise**2))
    mixed = np.sqrt(1 - specificity) * bias + np.sqrt(specificity) * input_logits
    return softmax(sharpness * mixed)


def linear_kernel(x: np.ndarray) -> np.ndarray:
    return x @ x.T / x.shape[1]


def relu_ntk(x: np.ndarray) -> np.ndarray:
    """NTK of an infinitely wide two-layer ReLU network (both layers trained), inputs / sqrt(d).

    K = <x,x'> k0(u) + |x||x'| k1(u), u = cos(x, x'), with the arc-cosine kernels
    k0(u) = (pi - arccos u) / pi and k1(u) = (u (pi - arccos u) + sqrt(1 - u^2)) / pi.
    """
    gram = linear_kernel(x)
    norms = np.sqrt(np.diag(gram))
    outer = np.outer(norms, norms)
    u = np.clip(gram / outer, -1.0, 1.0)
    angle = np.arccos(u)
    k0 = (np.pi - angle) / np.pi
    k1 = (u * (np.pi - angle) + np.sqrt(1.0 - u**2)) / np.pi
    return gram * k0 + outer * k1


def routing_kernel(gate_matrix: np.ndarray, expert_kernel: np.ndarray) -> np.ndarray:
    """H = sum_j g_j g_j^T * K for a kernel K shared by the experts."""
    return (gate_matrix @ gate_matrix.T) * expert_kernel


def effective_dimension(kernel: np.ndarray, ridge: float) -> float:
    """Tr(H (H + lambda I)^-1) through the eigenvalues of the symmetric H."""
    eigenvalues = np.clip(np.linalg.eigvalsh((kernel + kernel.T) / 2), 0.0, None)
    return float(np.sum(eigenvalues / (eigenvalues + ridge)))


def relative_effective_dimension(kernel: np.ndarray, ridge: float) -> float:
    """d_eff of H scaled to mean eigenvalue 1, i.e. lambda relative to Tr(H) / n."""
    trace = np.trace(kernel)
    if trace <= 0:
        raise GrokpathError("effective dimension: the kernel has no positive trace")
    return effective_dimension(kernel * len(kernel) / trace, ridge)


def mean_path_edit_distance(gate_matrix: np.ndarray, threshold: float) -> tuple[float, float]:
    """(mean pairwise char-level distance of the one-layer paths, mean path length in experts)."""
    paths = id_pathways(gate_matrix[:, None, :], threshold)
    n_pairs = len(paths) * (len(paths) - 1) // 2
    distance = mean_pathway_distance(paths, id_level=False, max_pairs=n_pairs)
    return distance.mean, float(np.mean([len(p[0]) for p in paths]))


def toy_point(seed: int, setup: ToySetup) -> dict:
    rng = np.random.default_rng(seed)
    x = gaussian_clusters(setup.n_samples, setup.dim, setup.n_clusters, setup.cluster_noise, rng)
    router = rng.standard_normal((setup.n_experts, setup.dim))
    bias = rng.standard_normal(setup.n_experts)
    specificity = float(rng.uniform(*setup.routing_specificity))
    gate_matrix = gates(x, router, bias, specificity, setup.sharpness, setup.cluster_noise)
    kernel = relu_ntk(x) if setup.expert_kernel == "relu_ntk" else linear_kernel(x)
    distance, path_length = mean_path_edit_distance(gate_matrix, setup.threshold)
    routing = routing_kernel(gate_matrix, kernel)
    return {
        "seed": seed,
        "routing_specificity": specificity,
        "edit_distance": distance,
        "effective_dim": relative_effective_dimension(routing, setup.ridge),
        "mean_path_length": path_length,
        "n_samples": setup.n_samples,
        "n_experts": setup.n_experts,
        "dim": setup.dim,
    }


def toy_table(seeds, setup: ToySetup) -> pd.DataFrame:
    return pd.DataFrame([toy_point(int(s), setup) for s in seeds], columns=TOY_COLUMNS)
