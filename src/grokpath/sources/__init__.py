"""Stage sources: hub corpora and checkpoints, and local checkpoint folders."""
