"""Stage loss: per-sample losses, memorization steps (t*) and the loss baselines."""
