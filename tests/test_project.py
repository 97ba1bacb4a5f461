"""The set-up promises the README makes: pinned torch, CI = make test, layers kept apart."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_make_test() -> None:
    lines = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[-1] == "exec make test"


def test_torch_is_pinned_to_the_local_cpu_build() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    assert project["scripts"]["trendlab"] == "cli:main"


def test_makefile_targets_do_their_own_setup() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run:", "test:", "bench:"):
        assert target in makefile
    assert "-m venv" in makefile
    assert "ruff check" in makefile and "ruff format --check" in makefile


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules(root: Path, package: str) -> list[str]:
    """Every module of ``package`` under ``root``, dotted."""
    names = []
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def loaded_by(root: Path, modules: list[str], depth: int = 1) -> set[str]:
    """Packages a fresh interpreter holds after importing ``modules`` from ``root``, named to
    ``depth`` parts ('core', or 'core.market' at depth 2): what they load transitively, not
    only what they name."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(' '.join(sorted({{'.'.join(m.split('.')[:{depth}]) for m in sys.modules}})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(result.stdout.split())


# Layer -> what importing it may never load, directly or through anything it imports.
LAYER_RULES = {
    "storage": {"torch", "streamlit", "services", "pages"},
    "core": {"storage", "services", "streamlit", "pages", "sqlalchemy", "duckdb"},
    "services": {"streamlit", "pages"},
}


def layer_violations(root: Path) -> dict[str, set[str]]:
    return {
        layer: loaded_by(root, _modules(root, layer)) & forbidden
        for layer, forbidden in LAYER_RULES.items()
        if (root / layer).is_dir()
    }


def test_the_layers_load_nothing_above_them_even_transitively() -> None:
    """storage loads no torch and no UI; core loads no storage, services or UI; services
    load no UI. Checked in a fresh interpreter, so an import through another module counts."""
    assert layer_violations(ROOT) == {layer: set() for layer in LAYER_RULES}


def test_the_layer_check_catches_a_violation_planted_two_imports_deep(tmp_path: Path) -> None:
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "__init__.py").write_text("")
    (tmp_path / "storage" / "repository.py").write_text("import helpers\n")
    (tmp_path / "helpers.py").write_text("import streamlit\n")  # the hidden path
    assert layer_violations(tmp_path) == {"storage": {"streamlit"}}


def test_the_market_and_recommender_domains_do_not_load_each_other() -> None:
    assert "core.recsys" not in loaded_by(ROOT, _modules(ROOT, "core/market"), depth=2)
    assert "core.market" not in loaded_by(ROOT, _modules(ROOT, "core/recsys"), depth=2)


SHARED_CORE_FORBIDDEN = {"core.market", "core.recsys"}


def shared_core_violations(root: Path) -> set[str]:
    """Domain packages that the shared core modules (core/*.py: config, trainer,
    checkpoints, ...) load, directly or through anything they import."""
    shared = [
        f"core.{p.stem}" for p in sorted((root / "core").glob("*.py")) if p.stem != "__init__"
    ]
    return loaded_by(root, shared, depth=2) & SHARED_CORE_FORBIDDEN


def test_the_shared_core_loads_no_domain() -> None:
    assert shared_core_violations(ROOT) == set()


def test_the_shared_core_check_catches_a_domain_import_planted_in_the_trainer(
    tmp_path: Path,
) -> None:
    for package in ("core", "core/market"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "core" / "trainer.py").write_text("import core.market\n")
    assert shared_core_violations(tmp_path) == {"core.market"}


PACKAGES = ("core", "storage", "services", "api", "cli", "pages")
"""Where an import cycle is looked for: every module of every package (bench/ and tests/
are scripts around them)."""


def _module_paths(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def module_imports(root: Path) -> dict[str, set[str]]:
    """module -> the modules of ``PACKAGES`` it imports anywhere in its source: at the top,
    inside functions, or under TYPE_CHECKING. ``from a import b`` counts module ``a.b`` when
    there is one (else ``a``); a module's own packages, which Python loads before it, do not
    count."""
    modules = _module_paths(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(f"{target}."):
                    found.add(target)
        graph[name] = found
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its modules in order, the first repeated at the end), or
    None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycle_anywhere() -> None:
    assert import_cycle(module_imports(ROOT)) is None


def test_the_cycle_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "jobs.py").write_text("from services.sweeps import SweepDriver\n")
    (tmp_path / "services" / "sweeps.py").write_text("def tick():\n    from services import jobs\n")
    (tmp_path / "services" / "runs.py").write_text("import services.jobs\n")
    assert import_cycle(module_imports(tmp_path)) == [
        "services.jobs",
        "services.sweeps",
        "services.jobs",
    ]


def test_pages_hold_no_torch_sql_or_storage() -> None:
    """Pages gather input, call services and core, and draw: no tensors, no SQL, no ORM rows
    (they read services.catalog's plain values)."""
    for path in (ROOT / "pages").glob("*.py"):
        forbidden = {"torch", "sqlalchemy", "duckdb", "storage"}
        if path.name == "shared.py":
            forbidden -= {"sqlalchemy"}  # the Engine type of the page helpers
        assert not _imports(path) & forbidden, path


def test_the_image_installs_and_starts_the_way_make_run_does() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    run_recipe = makefile.split("\nrun:")[1].split("\n\n")[0]
    assert "$(BIN)/trendlab serve --port" in run_recipe
    assert "pip install -e ." in makefile and "pip install" in dockerfile
    assert "-e ." in dockerfile, "the same pyproject.toml install, no second dependency list"
    assert 'CMD ["trendlab", "serve", "--port", "8501", "--address", "0.0.0.0"]' in dockerfile
    assert "FROM python:3.11-slim" in dockerfile and "USER trendlab" in dockerfile
    assert "/_stcore/health" in dockerfile and "EXPOSE 8501" in dockerfile
    assert 'VOLUME ["/data"]' in dockerfile and "TRENDLAB_REQUIRE_AUTH=1" in dockerfile
    assert "requirements" not in dockerfile.lower()
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert "maxUploadSize = 50" in config and 'showErrorDetails = "type"' in config


def test_the_cycle_check_sees_a_type_checking_import_in_storage(tmp_path: Path) -> None:
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "__init__.py").write_text("from storage.data_home import DataHome\n")
    (tmp_path / "storage" / "data_home.py").write_text("from storage.uploads import clean\n")
    (tmp_path / "storage" / "uploads.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from storage.data_home import X\n"
    )
    assert import_cycle(module_imports(tmp_path)) == [
        "storage.data_home",
        "storage.uploads",
        "storage.data_home",
    ]


MAX_LINES = 450
"""A module longer than this holds more than one thing (issue 40)."""


def test_no_module_outside_the_tests_is_longer_than_450_lines() -> None:
    skipped = {".venv", ".recbole", "tests", ".git"}
    long = {
        str(path.relative_to(ROOT)): count
        for path in ROOT.rglob("*.py")
        if not skipped & set(path.relative_to(ROOT).parts)
        and (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


REGISTRIES = {
    "services/registry.py",
    "core/trainables.py",
    "core/market/trainables.py",
    "core/recsys/trainables.py",
}
"""Where a model's domain may be read: everywhere else asks the registry's entry."""
DOMAINS = ("market", "recsys")


def domain_branches(root: Path) -> list[str]:
    """'path:line' of every comparison outside ``REGISTRIES`` that reads a ``.domain`` or
    compares with a domain's name."""
    found = []
    for package in (*PACKAGES, "bench"):
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative in REGISTRIES:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Compare):
                    continue
                sides = [node.left, *node.comparators]
                if any(isinstance(s, ast.Attribute) and s.attr == "domain" for s in sides) or any(
                    isinstance(s, ast.Constant) and s.value in DOMAINS for s in sides
                ):
                    found.append(f"{relative}:{node.lineno}")
    return found


NAME_REGISTRIES = {
    "core/recsys/engines.py": "ENGINES",
    "core/market/baselines.py": "MARKET_BASELINES",
}
"""The one module that spells each engine's and each market baseline's name."""
SAME_WORD = {
    ("api/health.py", "content"): "an OpenAPI operation's 'content' key",
    ("services/datasets.py", "oracle"): "the raw part that keeps the generator's truth",
    ("services/market/updates.py", "oracle"): "the same raw part",
    ("storage/feature_store.py", "oracle"): "the same raw part",
}
"""(module, word) -> what the word means there: the same spelling, another thing."""


def registered_names() -> set[str]:
    from core.market.baselines import MARKET_BASELINES
    from core.recsys.engines import ENGINES

    return {*ENGINES, *MARKET_BASELINES}


def name_spellings(root: Path, names: set[str]) -> list[str]:
    """'path:line word' of every string constant outside ``NAME_REGISTRIES`` (and the
    benchmarks, which choose what to measure by name as a user does) equal to a registered
    engine or baseline name."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative in NAME_REGISTRIES:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Constant)
                    and node.value in names
                    and (relative, node.value) not in SAME_WORD
                ):
                    found.append(f"{relative}:{node.lineno} {node.value}")
    return found


def test_no_module_outside_the_registries_spells_an_engine_or_baseline_name() -> None:
    assert name_spellings(ROOT, registered_names()) == []


def test_the_name_check_catches_a_name_planted_in_serving(tmp_path: Path) -> None:
    (tmp_path / "core" / "recsys").mkdir(parents=True)
    (tmp_path / "core" / "recsys" / "serving.py").write_text(
        "if entry.name == 'ease':\n    pass\nlabel = 'ease and more'\n"
    )
    (tmp_path / "core" / "recsys" / "engines.py").write_text("ENGINES = {'ease': None}\n")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "health.py").write_text("body.get('content')\n")
    assert name_spellings(tmp_path, {"ease", "content"}) == ["core/recsys/serving.py:1 ease"]


def test_no_module_outside_the_registries_branches_on_a_domain() -> None:
    assert domain_branches(ROOT) == []


def test_the_domain_check_catches_a_branch_planted_in_a_page(tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "train.py").write_text(
        "recommender = spec.domain == 'recsys'\nok = spec.sweepable\n"
    )
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "registry.py").write_text("x = entry.domain == 'market'\n")
    assert domain_branches(tmp_path) == ["pages/train.py:1"]
