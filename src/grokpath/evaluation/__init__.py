"""Stage evaluation: lm-eval, instruction tuning, contamination, generalization, matching."""
