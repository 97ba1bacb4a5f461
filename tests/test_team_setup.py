"""The team set-up (docs/deploy.md): compose.yaml runs PostgreSQL, one Ray head and the app on
one image and one data home, downloading nothing when it runs."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT


def test_compose_has_postgresql_a_ray_head_and_the_app_on_one_data_home() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "ray-head", "app"}
    app, head = services["app"], services["ray-head"]
    assert app["environment"]["TRENDLAB_DB_URL"].startswith("postgresql+psycopg://trendlab:")
    assert app["environment"]["TRENDLAB_RAY_ADDRESS"] == "ray-head:6379"
    assert app["image"] == head["image"] == "trendlab", "one image: the same Ray and Python"
    assert app["volumes"] == head["volumes"] == ["trendlab-data:/data"]
    assert "ray start --head" in " ".join(head["command"])
    assert "trendlab serve" in " ".join(app["command"])
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    text = (ROOT / "compose.yaml").read_text()
    assert not any(word in text for word in ("pip install", "curl ", "wget ", "runtime_env"))


def test_the_team_dependencies_are_installed_with_trendlab() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    for package in ('"psycopg[binary]', '"optuna', '"ray'):
        assert package in pyproject.split("[project.optional-dependencies]")[0], package
    assert '"torch==2.13.0"' in pyproject
