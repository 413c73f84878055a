"""Paper figures, one module per family; each figure is a function of tidy tables that writes a
PNG and a PDF. `grokpath.figures.render` reads a rule's named inputs and calls the right one.
Figures only draw: what a figure computes and the summary also reports (groups shown, trends
after t*, generalized fractions) is in `grokpath.analysis.trends`; no other stage imports figures.

- grokking: Fig 1 (memorized per step vs generalized), Fig 2 (matched group pairs)
- pathways: Figs 4 and 6 (metric + loss of memorized groups), Fig 5 (per layer),
  Fig 12 (cross-domain), Fig 13 (routing entropy vs distance)
- correlation: Table 1 (CSV + rendered), Fig 7 (metric vs accuracy with fits)
- ablations: Fig 9 (routing threshold), Figs 10-11 (eps, delta)
- theory: Fig 8 (effective dimension vs edit distance in the toy MoE)
- lab_grokking: the lab verdict (no paper figure): training and test accuracy per domain with
  t_fit, t_mem50 and t_gen50 marked
- monitor: the pathway monitor of the lab pretraining (no paper figure): per domain, probe
  accuracy, edit distance and consistency over steps, memorization steps marked
- seeds: Fig 7 over every seed of a run (config `seeds`; rule fig7_across_seeds calls it directly)
"""
