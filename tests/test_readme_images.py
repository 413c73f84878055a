"""`make readme-figures`: a finished run's Fig. 1, Fig. 4 and monitor figure as small PNGs in
docs/img/, with SOURCE.md naming the run, its config and commit; the README embeds exactly them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from grokpath.figures.readme_images import CONFIG_DIRS, README_FIGURES, find_config, main, readme_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def figure_png(path: Path, width_px: int, transparent: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(width_px / 100, width_px / 200), dpi=100)
    ax.plot([0, 1, 2, 3], [0, 1, 0.5, 2], label="memorized")
    ax.legend()
    fig.savefig(path, dpi=100, transparent=transparent)
    plt.close(fig)


@pytest.fixture
def finished_run(tmp_path) -> Path:
    """results/lab-x/seed7/ with the three figures (one wide and transparent, one narrow),
    versions.json, and config/lab-x.yaml naming the run."""
    run = tmp_path / "results" / "lab-x" / "seed7"
    figure_png(run / "figures" / "fig1_memorization_generalization.png", 1600, transparent=True)
    figure_png(run / "figures" / "fig4_edit_distance.png", 1200)
    figure_png(run / "figures" / "fig_monitor.png", 500)
    (run / "versions.json").write_text(json.dumps({"git": {"commit": "abc123", "dirty": True}}))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "lab-x.yaml").write_text("run: lab-x\nseeds: [7, 8]\n")
    (tmp_path / "config" / "other.yaml").write_text("run: other\n")
    return run


def test_the_figures_are_downscaled_with_their_source(finished_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as `make` runs it: paths relative to the repo root
    run = finished_run.relative_to(tmp_path)
    assert main([str(run), "--out", "docs/img"]) == 0
    out = tmp_path / "docs" / "img"
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.png" for n in README_FIGURES] + ["SOURCE.md"])
    sizes = {}
    for name in README_FIGURES:
        with Image.open(out / f"{name}.png") as image:
            assert image.mode == "P" and not image.text  # palettised, no metadata chunks
            sizes[name] = image.size
    assert sizes["fig1_memorization_generalization"] == (800, 400)  # 1600 x 800, halved
    assert sizes["fig4_edit_distance"] == (800, 400)
    assert sizes["fig_monitor"] == (500, 250)  # narrower than 800: kept as it is
    with Image.open(out / "fig1_memorization_generalization.png") as image:
        assert image.convert("RGB").getpixel((2, 2)) == (255, 255, 255)  # transparency on white
    source = (out / "SOURCE.md").read_text()
    assert "make readme-figures RUN=results/lab-x/seed7" in source
    assert "run `lab-x`, seed 7" in source
    assert "config: `config/lab-x.yaml`" in source
    assert "`abc123` with uncommitted changes" in source
    assert "`results/lab-x/seed7/figures/fig_monitor.png` | 500 x 250" in source
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main([str(run), "--out", "docs/img"]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # same run, same bytes


def test_without_versions_or_a_matching_config_the_source_says_unknown(finished_run, tmp_path):
    (finished_run / "versions.json").unlink()
    out = tmp_path / "img"
    readme_images(finished_run, out, config_dirs=[tmp_path / "nowhere"], width=300)
    source = (out / "SOURCE.md").read_text()
    assert "- config: unknown" in source and "unknown (the run has no versions.json)" in source
    with Image.open(out / "fig_monitor.png") as image:
        assert image.width == 300


def test_an_unfinished_run_is_one_line_and_writes_nothing(finished_run, tmp_path, capsys):
    (finished_run / "figures" / "fig_monitor.png").unlink()
    out = tmp_path / "img"
    assert main([str(finished_run), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {finished_run}: not a finished run, missing {finished_run / 'figures' / 'fig_monitor.png'}"]
    assert not out.exists()


def test_the_readme_embeds_the_images_the_target_makes():
    names = re.findall(r'"([a-z0-9_]+)"', (ROOT / "rules" / "analysis_common.smk").read_text())
    assert set(README_FIGURES) <= set(names)  # figures the workflow draws
    readme = (ROOT / "README.md").read_text()
    embedded = re.findall(r"!\[[^\]]*\]\(docs/img/([a-z0-9_]+)\.png\)", readme)
    assert sorted(embedded) == sorted(README_FIGURES)
    dirs = [ROOT / folder for folder in CONFIG_DIRS]  # the run names of the repo's own configs
    assert find_config("lab-full", dirs) == ROOT / "config" / "lab.yaml"
    assert find_config("tiny", dirs) == ROOT / "tests" / "configs" / "tiny.yaml"
    assert "docs/img/SOURCE.md" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^readme-figures:.*\n\t.*-m grokpath\.figures\.readme_images \$\(RUN\)", makefile, re.M)
    assert re.search(r"^tiny:.*\n\t.*--configfile tests/configs/tiny\.yaml", makefile, re.M)
