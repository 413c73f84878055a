"""Stage lab: the generated corpus, tokenizer, lab MoE model, pretraining and its probes."""
