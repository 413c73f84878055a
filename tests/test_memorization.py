import numpy as np
import pandas as pd
import pytest

from grokpath.errors import GrokpathError
from grokpath.loss.memorization import choose_eps, memorization_steps, memorization_table

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
    assert {k: chosen[k] for k in ("eps", "fraction", "reached_target")} == {
        "eps": 0.7, "fraction": 0.5, "reached_target": True}


def test_auto_eps_reports_an_unreachable_target():
    values = np.array([[1, 2, 3, 4.0], [4, 3, 2, 1.0]])
    chosen = choose_eps(values, STEPS, delta=0.05, eps_step=0.5, target=0.5)
    assert chosen["reached_target"] is False and chosen["fraction"] == 0.0


def test_missing_checkpoint_for_a_sample_is_an_error():
    frame = losses_frame({"a": [0.5, 0.5, 0.5, 0.5], "b": [1, 1, 1, 1]})
    frame = frame.drop(index=frame.index[-1])
    with pytest.raises(GrokpathError, match="sample b"):
        memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_names_the_sample_and_step(bad):
    frame = losses_frame({"a": [0.5, 0.5, 0.5, 0.5], "b": [1, 1, bad, 1]})
    with pytest.raises(GrokpathError, match=rf"sample b \(math\) has a non-finite loss \({bad}\) at step {STEPS[2]}"):
        memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)


def flat_losses(levels: list[float]) -> np.ndarray:
    """One sample per level, its loss flat over STEPS: memorized at step 100 iff level <= eps."""
    return np.array([[level] * len(STEPS) for level in levels], dtype=float)


def test_auto_eps_in_the_band_at_its_upper_edge():
    # eps 0.1 memorizes 1 of 8 (12.5 %), eps 0.2 memorizes 2 of 8 = 25 %: in [20 %, 25 %]
    chosen = choose_eps(flat_losses([0.1, 0.2] + [0.5] * 6), STEPS, 0.05, 0.1, 0.2)
    assert chosen["eps"] == 0.2 and chosen["fraction"] == 0.25
    assert chosen["band"] == [0.2, 0.25] and chosen["in_band"] is True
    assert "band_note" not in chosen


def test_auto_eps_jumping_past_the_band_says_so():
    # eps 0.1 memorizes 1 of 10 (10 %), eps 0.2 memorizes 4 of 10 (40 %): no grid eps in 20-25 %
    chosen = choose_eps(flat_losses([0.1, 0.2, 0.2, 0.2] + [0.5] * 6), STEPS, 0.05, 0.1, 0.2)
    assert chosen["eps"] == 0.2 and chosen["fraction"] == 0.4 and chosen["reached_target"]
    assert chosen["in_band"] is False
    assert "no eps on the grid" in chosen["band_note"] and "40.0%" in chosen["band_note"]


def test_unreachable_target_is_out_of_the_band():
    # rising losses settle only at the last step (unconfirmed): at most 1 of 10 is ever memorized
    values = np.vstack([flat_losses([0.1]), np.tile([1.0, 2.0, 3.0, 4.0], (9, 1))])
    chosen = choose_eps(values, STEPS, 0.05, 0.5, 0.2)
    assert chosen["fraction"] == 0.1 and not chosen["reached_target"] and chosen["in_band"] is False
    assert "finer" not in chosen["band_note"]


def test_auto_eps_band_reaches_the_eps_report():
    levels = [0.1, 0.2, 0.2, 0.2] + [0.5] * 6
    frame = losses_frame({f"s{i}": [level] * 4 for i, level in enumerate(levels)})
    _, _, report = memorization_table(frame, {"math": "auto"}, 0.05, 0.1, 0.2)
    entry = report["math"]
    assert entry["chosen"] == "auto" and entry["eps"] == 0.2 and entry["in_band"] is False
    assert entry["band"] == [0.2, 0.25] and "band_note" in entry


def test_bad_auto_eps_settings_are_refused():
    with pytest.raises(GrokpathError, match="eps_step"):
        choose_eps(flat_losses([0.1, 0.2]), STEPS, 0.05, 0.0, 0.2)


def test_memorized_groups_drop_the_unconfirmed_last_step():
    # a: t* 200 (confirmed at 300, 400); b: t* 400 = the last step, unconfirmed
    frame = losses_frame({"a": [2, 0.5, 0.5, 0.5], "b": [2, 2, 2, 0.5], "c": [2, 0.5, 0.5, 0.5]})
    samples, groups, _ = memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)
    assert samples.set_index("sample_id").loc["b", "t_star"] == 400
    assert groups.to_dict("records") == [{"domain": "math", "t_star": 200, "n_samples": 2}]
