import numpy as np
import pandas as pd
import pytest

from grokpath.errors import GrokpathError
from grokpath.memorization import choose_eps, memorization_steps, memorization_table

STEPS = np.array([100, 200, 300, 400])


def t_star(row, eps=1.0, delta=0.05):
    return int(memorization_steps(np.array([row], dtype=float), STEPS, eps, delta)[0])


def test_never_memorized_when_the_final_loss_is_above_eps():
    assert t_star([3.0, 2.0, 1.5, 1.2]) == -1


def test_memorized_at_the_first_step():
    assert t_star([0.50, 0.52, 0.49, 0.50]) == 100


def test_a_dip_back_above_eps_restarts_the_clock():
    assert t_star([0.5, 1.3, 0.5, 0.5]) == 300


def test_drifting_loss_is_memorized_only_once_within_delta_of_the_final():
    assert t_star([0.9, 0.5, 0.2, 0.18]) == 300


def test_ties_count_as_within_the_thresholds():
    # exactly eps, exactly delta from the final loss (values exact in binary)
    assert t_star([1.0, 0.75, 0.5, 0.5], eps=1.0, delta=0.25) == 200
    assert t_star([1.0, 1.0, 1.0, 1.0], eps=1.0) == 100


def losses_frame(rows: dict[str, list[float]], domain="math") -> pd.DataFrame:
    records = []
    for sample_id, values in rows.items():
        for step, loss in zip(STEPS, values):
            records.append({"domain": domain, "sample_id": sample_id, "split": "train", "step": int(step),
                            "loss": loss, "n_tokens": 4})
    return pd.DataFrame(records)


def test_table_marks_unconfirmed_last_step_and_never_memorized():
    frame = losses_frame({"a": [0.5, 0.5, 0.5, 0.5], "b": [2, 2, 2, 0.5], "c": [3, 3, 3, 3]})
    samples, groups, report = memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)
    by_id = samples.set_index("sample_id")
    assert by_id.loc["a", "t_star"] == 100 and by_id.loc["a", "memorized"]
    assert by_id.loc["b", "t_star"] == 400 and not by_id.loc["b", "memorized"]
    assert pd.isna(by_id.loc["c", "t_star"]) and not by_id.loc["c", "memorized"]
    assert groups.to_dict("records") == [{"domain": "math", "t_star": 100, "n_samples": 1}]
    assert report["math"]["chosen"] == "config"


def test_auto_eps_is_the_smallest_grid_value_reaching_the_target():
    values = np.array([[0.35, 0.3, 0.3, 0.3], [0.8, 0.7, 0.7, 0.7], [2, 2, 2, 2], [3, 3, 3, 3]])
    chosen = choose_eps(values, STEPS, delta=0.05, eps_step=0.1, target=0.5)
    assert chosen == {"eps": 0.7, "fraction": 0.5, "reached_target": True}


def test_auto_eps_reports_an_unreachable_target():
    values = np.array([[1, 2, 3, 4.0], [4, 3, 2, 1.0]])
    chosen = choose_eps(values, STEPS, delta=0.05, eps_step=0.5, target=0.5)
    assert chosen["reached_target"] is False and chosen["fraction"] == 0.0


def test_missing_checkpoint_for_a_sample_is_an_error():
    frame = losses_frame({"a": [0.5, 0.5, 0.5, 0.5], "b": [1, 1, 1, 1]})
    frame = frame.drop(index=frame.index[-1])
    with pytest.raises(GrokpathError, match="sample b"):
        memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)
