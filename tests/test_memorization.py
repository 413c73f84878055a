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


# ---------------------------------------------------------------- the samples table and eps report

def test_a_checkpoint_at_step_zero_can_be_t_star():
    # OLMoE-style runs start at step 0: a sample memorized there is memorized, not "never"
    frame = losses_frame({"a": [0.5, 0.5, 0.5, 0.5], "b": [3, 3, 3, 3]})
    frame["step"] -= 100  # steps 0, 100, 200, 300
    samples, groups, report = memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)
    by_id = samples.set_index("sample_id")
    assert by_id.loc["a", "t_star"] == 0 and by_id.loc["a", "memorized"]
    assert report["math"]["fraction"] == 0.5
    assert groups.to_dict("records") == [{"domain": "math", "t_star": 0, "n_samples": 1}]


def test_t_star_at_the_second_last_checkpoint_is_confirmed():
    # settles at 300, confirmed at 400: memorized; only a t* at 400 itself is unconfirmed
    frame = losses_frame({"a": [2, 2, 0.5, 0.5], "b": [2, 2, 2, 2]})
    samples, _, report = memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)
    assert samples.set_index("sample_id").loc["a", "memorized"]
    assert report["math"]["fraction"] == 0.5


def test_samples_table_columns_carry_the_thresholds_and_final_loss():
    frame = losses_frame({"a": [2, 0.5, 0.4, 0.45], "b": [3, 3, 3, 2.5]})
    samples, _, _ = memorization_table(frame, {"math": 1.0}, 0.1, 0.1, 0.2)
    assert samples.columns.tolist() == ["domain", "sample_id", "t_star", "memorized", "eps", "delta",
                                        "final_loss"]
    assert str(samples["t_star"].dtype) == "Int64"
    assert samples["eps"].tolist() == [1.0, 1.0] and samples["delta"].tolist() == [0.1, 0.1]
    assert samples.set_index("sample_id")["final_loss"].to_dict() == {"a": 0.45, "b": 2.5}


def test_domains_come_out_sorted_with_a_fresh_index():
    frame = pd.concat([losses_frame({"z1": [3] * 4}, domain="math"),
                       losses_frame({"a1": [0.5] * 4, "a2": [3] * 4}, domain="code")])
    samples, _, report = memorization_table(frame, {"math": 1.0, "code": 1.0}, 0.05, 0.1, 0.2)
    assert samples["domain"].tolist() == ["code", "code", "math"]
    assert samples.index.tolist() == [0, 1, 2]
    assert list(report) == ["code", "math"]


def test_a_domain_missing_from_the_eps_setting_uses_auto():
    frame = losses_frame({"a": [0.15] * 4, "b": [3] * 4})
    _, _, report = memorization_table(frame, {"code": 1.0}, 0.05, 0.1, 0.5)
    assert report["math"]["chosen"] == "auto" and report["math"]["target"] == 0.5
    assert report["math"]["eps"] == 0.2  # the first grid step at or above 0.15


def test_two_checkpoints_suffice_and_one_is_refused():
    two = losses_frame({"a": [0.5, 0.5], "b": [3, 3]})
    samples, _, _ = memorization_table(two, {"math": 1.0}, 0.05, 0.1, 0.2)
    assert samples.set_index("sample_id").loc["a", "t_star"] == 100
    one = losses_frame({"a": [0.5]})
    with pytest.raises(GrokpathError, match="^loss tables: memorization needs at least two checkpoints$"):
        memorization_table(one, {"math": 1.0}, 0.05, 0.1, 0.2)


def test_no_training_split_is_refused_by_name():
    frame = losses_frame({"a": [0.5] * 4}).assign(split="valid")
    with pytest.raises(GrokpathError, match=r"^loss tables: no training samples \(split == 'train'\)"):
        memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)


def test_a_null_loss_counts_as_non_finite():
    # a nullable column (Float64 with <NA>) must reach the same one-line error as NaN
    frame = losses_frame({"a": [0.5, 0.5, 0.5, 0.5], "b": [1, 1, 1, 1]})
    frame["loss"] = frame["loss"].astype("Float64")
    frame.loc[5, "loss"] = pd.NA
    with pytest.raises(GrokpathError, match="sample b"):
        memorization_table(frame, {"math": 1.0}, 0.05, 0.1, 0.2)


@pytest.mark.parametrize("fraction_of_eight, in_band", [(2, True), (1, False)])
def test_a_configured_eps_reports_the_band(fraction_of_eight, in_band):
    # 2 of 8 at the band's lower edge (20 % ... 25 % with target 0.25 -> [0.25, 0.3]); 1 of 8 below
    rows = {f"s{i}": [0.5 if i < fraction_of_eight else 3] * 4 for i in range(8)}
    _, _, report = memorization_table(losses_frame(rows), {"math": 1.0}, 0.05, 0.1, 0.25)
    assert report["math"]["band"] == [0.25, 0.3] and report["math"]["in_band"] is in_band


def test_a_fraction_inside_the_band_is_in_band():
    # 2 of 9 = 22.2 %: strictly inside [20 %, 25 %]
    rows = {f"s{i}": [0.5 if i < 2 else 3] * 4 for i in range(9)}
    _, _, report = memorization_table(losses_frame(rows), {"math": 1.0}, 0.05, 0.1, 0.2)
    assert report["math"]["in_band"] is True


def test_auto_eps_can_be_the_first_grid_step():
    chosen = choose_eps(flat_losses([0.1, 0.5, 0.5, 0.5]), STEPS, 0.05, 0.1, 0.25)
    assert chosen["eps"] == 0.1 and chosen["reached_target"]


def test_auto_eps_scans_up_to_the_largest_loss():
    # every loss is 1.0: only eps = 1.0 (the largest loss itself) memorizes anything
    chosen = choose_eps(flat_losses([1.0, 1.0]), STEPS, 0.05, 0.5, 1.0)
    assert chosen["eps"] == 1.0 and chosen["fraction"] == 1.0 and chosen["reached_target"]


def test_unreachable_target_keeps_the_smallest_eps_of_the_best_fraction():
    # from eps 0.5 on, 1 of 2 is memorized (the other settles only at the last step): the report
    # gives 0.5, not a larger eps with the same fraction
    values = np.vstack([flat_losses([0.3]), [[3.0, 3.0, 3.0, 0.2]]])
    chosen = choose_eps(values, STEPS, 0.05, 0.5, 0.9)
    assert chosen["eps"] == 0.5 and chosen["fraction"] == 0.5 and not chosen["reached_target"]
    assert chosen["band_note"].endswith("eps 0.5 gives 50.0%")


def test_an_overshoot_suggests_a_finer_grid():
    chosen = choose_eps(flat_losses([0.1, 0.2, 0.2, 0.2] + [0.5] * 6), STEPS, 0.05, 0.1, 0.2)
    assert chosen["band_note"].endswith("gives 40.0%; a finer eps_step may land in the band")


@pytest.mark.parametrize("target", [0.0, 1.5, -0.1])
def test_auto_eps_target_outside_0_1_is_refused(target):
    with pytest.raises(GrokpathError, match=r"in \(0, 1\]"):
        choose_eps(flat_losses([0.1, 0.2]), STEPS, 0.05, 0.1, target)


def test_auto_eps_target_of_one_is_allowed():
    chosen = choose_eps(flat_losses([0.1, 0.2]), STEPS, 0.05, 0.1, 1.0)
    assert chosen["eps"] == 0.2 and chosen["fraction"] == 1.0
