"""Stage analysis: statistics, trends, ablations, theory toy, verdict, seeds and the summary."""
