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
    assert app["image"] == head["image"] == "trendlab-team", "one image: the same Ray and Python"
    assert app["build"]["args"]["TRENDLAB_EXTRAS"] == "[ray]", "the image installs the ray extra"
    assert app["volumes"] == head["volumes"] == ["trendlab-data:/data"]
    assert "ray start --head" in " ".join(head["command"])
    assert "trendlab serve" in " ".join(app["command"])
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    text = (ROOT / "compose.yaml").read_text()
    assert not any(word in text for word in ("pip install", "curl ", "wget ", "runtime_env"))


def test_the_team_dependencies_are_declared_and_ray_is_what_a_team_switches_on() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    base, extras = pyproject.split("[project.optional-dependencies]")
    for package in ('"psycopg[binary]', '"optuna'):
        assert package in base, package
    assert '"ray' not in base, "make run installs no Ray"
    assert 'ray = ["ray>=2.9"]' in extras and extras.count('"ray>=2.9"') == 2, "extra and dev"
    assert '"torch==2.13.0"' in pyproject
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-e .${TRENDLAB_EXTRAS}" in dockerfile and 'ARG TRENDLAB_EXTRAS=""' in dockerfile
