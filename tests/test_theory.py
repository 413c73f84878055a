"""The theory toy against closed-form cases: effective dimension, routing kernel, NTK, paths."""

from __future__ import annotations

import numpy as np
import pytest

from grokpath.analysis.theory import (
    TOY_COLUMNS,
    ToySetup,
    effective_dimension,
    gates,
    linear_kernel,
    mean_path_edit_distance,
    relative_effective_dimension,
    relu_ntk,
    routing_kernel,
    toy_table,
)
from grokpath.errors import GrokpathError


def small_setup(**changes) -> ToySetup:
    values = dict(n_samples=24, dim=20, n_experts=6, n_clusters=3, cluster_noise=0.5,
                  sharpness=2.0, routing_specificity=(0.0, 1.0), ridge=1.0, threshold=0.7)  # fmt: skip
    return ToySetup(**{**values, **changes})


@pytest.mark.parametrize("n, c, ridge", [(5, 1.0, 1.0), (10, 3.0, 0.5), (7, 0.2, 2.0)])
def test_effective_dimension_of_a_scaled_identity(n, c, ridge):
    # H = c I: every eigenvalue is c, so Tr(H (H + lambda I)^-1) = n c / (c + lambda)
    assert effective_dimension(c * np.eye(n), ridge) == pytest.approx(n * c / (c + ridge))


def test_effective_dimension_by_its_definition():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 4))
    kernel = a @ a.T
    direct = np.trace(kernel @ np.linalg.inv(kernel + 0.3 * np.eye(6)))
    assert effective_dimension(kernel, 0.3) == pytest.approx(direct)


def test_relative_effective_dimension_of_a_rank_one_kernel():
    # H = 5 u u^T scaled to trace n has the single eigenvalue n: d_eff = n / (n + lambda)
    u = np.array([1.0, 2.0, -1.0, 0.5])
    kernel = 5 * np.outer(u, u)
    assert relative_effective_dimension(kernel, 2.0) == pytest.approx(4 / (4 + 2.0))


def test_relative_effective_dimension_rejects_a_zero_kernel():
    with pytest.raises(GrokpathError, match="positive trace"):
        relative_effective_dimension(np.zeros((3, 3)), 1.0)


def test_one_hot_routing_on_orthogonal_inputs_gives_n_over_one_plus_lambda():
    n, d = 6, 8
    x = np.sqrt(d) * np.eye(n, d)  # linear kernel x x^T / d = I
    experts = np.array([0, 1, 0, 2, 1, 2])
    gate_matrix = np.eye(3)[experts]
    kernel = routing_kernel(gate_matrix, linear_kernel(x))
    assert kernel == pytest.approx(np.eye(n))
    assert effective_dimension(kernel, 0.5) == pytest.approx(n / 1.5)


def test_shared_routing_only_rescales_the_expert_kernel():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 5))
    shared = np.tile(np.array([0.6, 0.3, 0.1]), (10, 1))
    expert_kernel = relu_ntk(x)
    routed = routing_kernel(shared, expert_kernel)
    assert routed == pytest.approx(0.46 * expert_kernel)  # |g|^2 = 0.36 + 0.09 + 0.01
    assert relative_effective_dimension(routed, 1.0) == pytest.approx(
        relative_effective_dimension(expert_kernel, 1.0)
    )


def test_relu_ntk_closed_form_values():
    d = 4
    x = np.array([[2.0, 0, 0, 0], [0, 3.0, 0, 0], [1.0, 1.0, 0, 0]])
    kernel = relu_ntk(x)
    # same input (u = 1): k0 = k1 = 1, K = 2 |x|^2 / d
    assert kernel[0, 0] == pytest.approx(2 * 4 / d)
    # orthogonal inputs (u = 0): k0 = 1/2, k1 = 1/pi, K = |x||x'| / (pi d)
    assert kernel[0, 1] == pytest.approx(2 * 3 / (np.pi * d))
    # 45 degrees: u = 1/sqrt(2), arccos u = pi/4
    u, angle = 1 / np.sqrt(2), np.pi / 4
    gram, outer = 2 / d, 2 * np.sqrt(2) / d
    expected = (
        gram * (np.pi - angle) / np.pi + outer * (u * (np.pi - angle) + np.sqrt(1 - u**2)) / np.pi
    )
    assert kernel[0, 2] == pytest.approx(expected)


def test_mean_path_edit_distance_by_hand():
    # paths "0", "1", "0,1": distances 1, 2, 2 -> mean 5/3; lengths 1, 1, 2
    gate_matrix = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    distance, length = mean_path_edit_distance(gate_matrix, 0.7)
    assert distance == pytest.approx(5 / 3)
    assert length == pytest.approx(4 / 3)


def test_zero_specificity_routes_every_input_the_same_way():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 10))
    gate_matrix = gates(x, rng.normal(size=(5, 10)), rng.normal(size=5), 0.0, 2.0, 0.5)
    assert np.allclose(gate_matrix, gate_matrix[0])
    assert mean_path_edit_distance(gate_matrix, 0.7)[0] == 0.0


def test_gates_are_distributions():
    rng = np.random.default_rng(3)
    gate_matrix = gates(rng.normal(size=(7, 10)), rng.normal(size=(4, 10)), rng.normal(size=4),
                        0.6, 3.0, 0.5)  # fmt: skip
    assert gate_matrix.sum(axis=1) == pytest.approx(np.ones(7))
    assert (gate_matrix > 0).all()


def test_toy_table_is_seeded_and_complete():
    setup = small_setup()
    first, second = toy_table(range(4), setup), toy_table(range(4), setup)
    assert list(first.columns) == TOY_COLUMNS
    assert first.equals(second)
    assert first["seed"].tolist() == [0, 1, 2, 3]
    assert (first["effective_dim"] > 0).all() and (first["effective_dim"] <= setup.n_samples).all()


def test_toy_setup_rejects_bad_values():
    with pytest.raises(GrokpathError, match="expert_kernel"):
        small_setup(expert_kernel="rbf")
    with pytest.raises(GrokpathError, match="routing_specificity"):
        small_setup(routing_specificity=(0.5, 1.5))
