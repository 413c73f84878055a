"""The README's images (docs/img/): a finished run's figures, downscaled, with where they came from.

`make readme-figures RUN=results/lab-full/seed20261127` runs
`python -m grokpath.figures.readme_images RUN --out docs/img`: it copies Fig. 1, Fig. 4 and the
pathway monitor's figure (`README_FIGURES`) from `RUN/figures/` into `--out` as small PNGs
(at most `--width` pixels wide, white background, 256-colour palette) and writes `SOURCE.md`
there, naming the run, its config and the git commit the run was made with (from
`RUN/versions.json`, rule `versions`). The images are never edited by hand: rerun the target.

The config is the one given with `--config`, else the one file among `CONFIG_DIRS` (`config/`,
`config/examples/`, `tests/configs/`) whose `run` is the run's name (`results/{run}/` or, with
several seeds, `results/{run}/seed{N}/`); "unknown" when there is none or more than one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Iterable

import yaml
from PIL import Image

from grokpath.errors import GrokpathError
from grokpath.tableio import atomic_path

# name in results/{run}/figures/ (rules/analysis_common.smk), what the README calls it
README_FIGURES = {
    "fig1_memorization_generalization": "Fig. 1: memorized samples per step vs cumulative generalized test fraction",
    "fig4_edit_distance": "Fig. 4: edit distance and training loss of the memorized groups over steps",
    "fig_monitor": "the pathway monitor of the lab pretraining: probe accuracy, edit distance, consistency",
}
DEFAULT_WIDTH = 800
CONFIG_DIRS = ("config", "config/examples", "tests/configs")  # relative to the repo root (make's cwd)
_SEED_DIR = re.compile(r"^seed(\d+)$")


def downscale(src: str | Path, dest: str | Path, width: int = DEFAULT_WIDTH) -> tuple[int, int]:
    """Write `src` (a PNG) to `dest` at most `width` px wide, flattened on white and palettised
    (figures are few flat colours: a third of the bytes, no visible change); returns dest's size."""
    try:
        with Image.open(src) as image:
            image.load()
    except (OSError, SyntaxError) as exc:
        raise GrokpathError(f"{src}: not a readable image ({exc})") from None
    rgba = image.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat.alpha_composite(rgba)
    flat = flat.convert("RGB")
    if flat.width > width:
        flat = flat.resize((width, max(1, round(flat.height * width / flat.width))), Image.Resampling.LANCZOS)
    small = flat.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_path(dest) as tmp:
        small.save(tmp, format="PNG", optimize=True)  # no text chunks: same input, same bytes
    return small.size


def run_name(run_dir: Path) -> tuple[str, int | None]:
    """(run, seed) of results/{run}/ or results/{run}/seed{N}/."""
    seed = _SEED_DIR.match(run_dir.name)
    if seed:
        return run_dir.parent.name, int(seed.group(1))
    return run_dir.name, None


def find_config(run: str, config_dirs: Iterable[str | Path] = CONFIG_DIRS) -> Path | None:
    """The config among config_dirs/*.yaml whose `run` is `run` (None if none or several)."""
    found = []
    for path in sorted(p for folder in config_dirs for p in Path(folder).glob("*.yaml")):
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        if isinstance(config, dict) and config.get("run") == run:
            found.append(path)
    return found[0] if len(found) == 1 else None


def commit_line(run_dir: Path) -> str:
    versions = run_dir / "versions.json"
    if not versions.exists():
        return "unknown (the run has no versions.json)"
    git = json.loads(versions.read_text()).get("git")
    if not git or not git.get("commit"):
        return "unknown (versions.json: not made from a git checkout)"
    dirty = " with uncommitted changes" if git.get("dirty") else ""
    return f"`{git['commit']}`{dirty} (from `{versions.as_posix()}`)"


def source_text(run_dir: Path, config: Path | None, images: dict[str, tuple[Path, tuple[int, int]]], width: int) -> str:
    run, seed = run_name(run_dir)
    seed_text = f", seed {seed}" if seed is not None else ""
    lines = [
        "# Where the README's images come from",
        "",
        f"Made by `make readme-figures RUN={run_dir.as_posix()}` (`python -m grokpath.figures.readme_images`)",
        "from a finished run; do not edit them by hand, rerun the target.",
        "",
        f"- run: `{run_dir.as_posix()}` (run `{run}`{seed_text})",
        f"- config: {f'`{config.as_posix()}`' if config else 'unknown'}",
        f"- grokpath commit of the run: {commit_line(run_dir)}",
        "",
        f"| image | from | size (px, at most {width} wide) |",
        "|---|---|---|",
    ]
    for name, (src, (w, h)) in images.items():
        lines.append(f"| `{name}.png` | `{src.as_posix()}` | {w} x {h} |")
    return "\n".join(lines) + "\n"


def readme_images(
    run_dir: str | Path, out: str | Path, *, config: str | Path | None = None, width: int = DEFAULT_WIDTH,
    config_dirs: Iterable[str | Path] = CONFIG_DIRS,
) -> dict[str, Path]:  # fmt: skip
    """Downscale the run's README_FIGURES into `out` and write out/SOURCE.md; returns the images.
    Every figure must exist (checked before anything is written)."""
    run_dir, out = Path(run_dir), Path(out)
    if width < 1:
        raise GrokpathError(f"width {width}: expected a positive number of pixels")
    sources = {name: run_dir / "figures" / f"{name}.png" for name in README_FIGURES}
    missing = [str(path) for path in sources.values() if not path.is_file()]
    if missing:
        raise GrokpathError(f"{run_dir}: not a finished run, missing {', '.join(missing)}")
    if config is None:
        config = find_config(run_name(run_dir)[0], config_dirs)
    images, written = {}, {}
    for name, src in sources.items():
        dest = out / f"{name}.png"
        images[name] = (src, downscale(src, dest, width))
        written[name] = dest
    with atomic_path(out / "SOURCE.md") as tmp:
        tmp.write_text(source_text(run_dir, Path(config) if config else None, images, width))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grokpath.figures.readme_images", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a finished run's folder, e.g. results/lab-full/seed20261127")
    parser.add_argument("--out", default="docs/img", help="where the images and SOURCE.md go (default docs/img)")
    parser.add_argument("--config", help="the run's config (default: the config whose run is the run's name)")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH, help=f"maximum width in px (default {DEFAULT_WIDTH})")
    args = parser.parse_args(argv)
    try:
        written = readme_images(args.run, args.out, config=args.config, width=args.width)
    except GrokpathError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written.values():
        print(path)
    print(Path(args.out) / "SOURCE.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
