"""The package layout: stages do not import figures, the README's layout table is the tree, and
the root's re-exported entry points resolve."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import grokpath

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "grokpath"
FIGURES = "grokpath.figures"
README_SECTION = "## Package layout\n"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved; for
    `from X import a, b` both X.a and X.b are listed (a and b may be submodules)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def is_figures(module: str) -> bool:
    return module == FIGURES or module.startswith(FIGURES + ".")


def test_only_figures_import_figures():
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "figures"):
            continue
        hits = {}
        for line, module in imported_modules(path):
            if is_figures(module):
                hits.setdefault(line, module)  # the first (shortest) figures module of the line
        offending += [f"{path.relative_to(ROOT)}:{line}: imports {m}" for line, m in sorted(hits.items())]
    assert not offending, (
        "only grokpath.figures may import grokpath.figures (move the computation to "
        "grokpath.analysis, e.g. analysis/trends.py):\n" + "\n".join(offending)
    )


def test_the_import_check_sees_every_form(tmp_path, monkeypatch):
    """The check above catches absolute, `from grokpath import figures` and relative imports."""
    fake = tmp_path / "grokpath"
    (fake / "analysis").mkdir(parents=True)
    source = (
        "import grokpath.figures.render\n"
        "from grokpath.figures.pathways import fig4_edit_distance\n"
        "from grokpath import figures\n"
        "from ..figures import common\n"
        "from .. import figures as f\n"
        "from grokpath.analysis import stats\n"
        "def lazy():\n"
        "    from grokpath.figures import render\n"
    )
    (fake / "analysis" / "x.py").write_text(source)
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    hits = sorted({line for line, m in imported_modules(fake / "analysis" / "x.py") if is_figures(m)})
    assert hits == [1, 2, 3, 4, 5, 8]


def readme_layout() -> dict[str, set[str]]:
    """The README's layout table: package -> the modules it lists."""
    text = (ROOT / "README.md").read_text()
    assert README_SECTION in text, f"README.md has no '{README_SECTION.strip()}' section"
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    layout = {}
    for line in section.splitlines():
        row = re.match(r"\|\s*`(grokpath(?:\.\w+)?)`\s*\|[^|]*\|([^|]*)\|\s*$", line)
        if row:
            package, modules = row.groups()
            assert package not in layout, f"README layout lists {package} twice"
            layout[package] = set(re.findall(r"`(\w+)`", modules))
    return layout


def tree_layout() -> dict[str, set[str]]:
    """The tree: the root package and each subpackage -> its modules (no __init__)."""
    layout = {"grokpath": {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}}
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        folder = init.parent
        layout[f"grokpath.{folder.name}"] = {
            p.stem for p in folder.glob("*.py") if p.stem != "__init__"
        }
    return layout


def test_readme_layout_lists_the_tree():
    listed, actual = readme_layout(), tree_layout()
    assert set(listed) == set(actual), (
        f"README layout packages: missing {sorted(set(actual) - set(listed))}, "
        f"not in the tree {sorted(set(listed) - set(actual))}"
    )
    for package in actual:
        assert listed[package] == actual[package], (
            f"README layout, {package}: missing {sorted(actual[package] - listed[package])}, "
            f"not in the tree {sorted(listed[package] - actual[package])}"
        )


def test_no_stray_folders_without_init():
    """A folder of modules without __init__.py would escape the layout check (and packaging)."""
    stray = [
        str(d.relative_to(ROOT)) for d in PACKAGE.rglob("*")
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
        and not (d / "__init__.py").exists()
    ]  # fmt: skip
    assert not stray


def test_root_exports_resolve():
    assert grokpath.__version__
    missing = [name for name in grokpath.__all__ if not hasattr(grokpath, name)]
    assert not missing, f"grokpath.__all__ names that do not resolve: {missing}"
    assert set(grokpath.__all__) <= set(dir(grokpath))
    from grokpath import PathwayMonitor, grokking_verdict, pretrain  # noqa: F401  (as documented)
    from grokpath.analysis.verdict import grokking_verdict as defined

    assert grokking_verdict is defined


def test_unknown_root_attribute_is_an_attribute_error():
    try:
        grokpath.no_such_name  # noqa: B018
    except AttributeError:
        pass
    else:
        raise AssertionError("grokpath.no_such_name resolved")


def test_importing_the_package_stays_light():
    """Every workflow job imports grokpath: the re-exports must not pull torch in at import."""
    code = "import sys, grokpath; print(' '.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
