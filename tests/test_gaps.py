import pandas as pd

from grokpath.gaps import domain_gaps, half_final_step, half_memorized_step


def test_half_final_step_is_the_first_step_reaching_half():
    accuracy = pd.Series([0.0, 0.2, 0.5, 0.4, 0.8], index=[10, 20, 30, 40, 50])
    assert half_final_step(accuracy) == 30  # half of the final 0.8 is 0.4; 0.5 at step 30


def test_half_memorized_step_is_the_median_t_star_rounded_down():
    assert half_memorized_step(pd.Series([30, 10, 20, 40], dtype="Int64")) == 20
    assert half_memorized_step(pd.Series([5, None, 7], dtype="Int64")) == 5
    assert half_memorized_step(pd.Series([], dtype="Int64")) is None


def test_gap_is_positive_when_test_lags_memorization():
    accuracy = pd.DataFrame({"domain": "math", "step": [10, 20, 30, 40], "accuracy": [0.0, 0.1, 0.3, 0.9]})
    samples = pd.DataFrame({"domain": "math", "sample_id": list("abc"), "t_star": pd.array([10, 10, 20], dtype="Int64"),
                            "memorized": True})
    row = domain_gaps(accuracy, samples).iloc[0]
    assert (row["test_half_step"], row["memorized_half_step"], row["gap"]) == (40, 10, 30)


def test_no_gap_without_accuracy():
    accuracy = pd.DataFrame({"domain": "code", "step": [10, 20], "accuracy": [0.0, 0.0]})
    samples = pd.DataFrame({"domain": "code", "sample_id": ["a"], "t_star": pd.array([10], dtype="Int64"), "memorized": True})
    assert pd.isna(domain_gaps(accuracy, samples).iloc[0]["gap"])
