"""The set-up promises the README makes: pinned torch, CI = make test, layers kept apart."""

from __future__ import annotations

import ast
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


def test_core_and_storage_never_import_the_ui_and_core_never_imports_storage() -> None:
    for path in (ROOT / "core").rglob("*.py"):
        assert not _imports(path) & {"streamlit", "storage", "sqlalchemy", "pages"}, path
    for path in (ROOT / "storage").rglob("*.py"):
        assert not _imports(path) & {"streamlit", "pages", "torch"}, path


def test_pages_hold_no_torch_or_sql() -> None:
    for path in (ROOT / "pages").glob("*.py"):
        assert not _imports(path) & {"torch", "sqlalchemy", "duckdb"} - (
            {"sqlalchemy"} if path.name == "shared.py" else set()
        ), path


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
