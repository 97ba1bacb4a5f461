"""The Train page's YAML upload fills the form (issue 23, item 2): it must not write the state of
widgets the page has already drawn."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli import app as cli_app
from core.config import parse_yaml
from services import catalog
from services.registry import TRAINABLE
from tests.pages.test_pages import _fill, _run

pytestmark = pytest.mark.usefixtures("fixed_estimate")


def test_an_uploaded_yaml_file_fills_the_form_and_training_starts_from_it(
    engine: Engine,
) -> None:
    _fill(engine)
    at = _run("pages/train.py")
    at.file_uploader[0].upload("settings.yaml", b"epochs: 5\nbatch_size: 32\n", "text/yaml")
    at.run()
    assert not at.exception, at.exception
    assert at.number_input(key="training:dual_tower:epochs").value == 5
    assert at.number_input(key="training:dual_tower:batch_size").value == 32
    at.number_input(key="training:dual_tower:batch_size").set_value(16).run()
    assert at.number_input(key="training:dual_tower:batch_size").value == 16, (
        "an edit after the upload stays: the file fills the form once"
    )
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    newest = catalog.jobs(engine=engine)[0]
    training = catalog.run(engine=engine, run_id=newest.run_id).config["training"]
    assert (training["epochs"], training["batch_size"]) == (5, 16)


def test_a_bad_yaml_upload_says_why_and_keeps_the_form(engine: Engine) -> None:
    _fill(engine)
    at = _run("pages/train.py")
    at.file_uploader[0].upload("settings.yaml", b"epochs: [1, 2\n", "text/yaml")
    at.run()
    assert not at.exception, at.exception
    assert any("settings.yaml" in e.value for e in at.error), [e.value for e in at.error]
    assert at.number_input(key="training:dual_tower:epochs").value == 100, "the form is kept"
    assert any(b.label == "Start training" for b in at.button)


def _stored_recommender_dataset(engine: Engine) -> None:
    from core.recsys.synthetic import RecsysSpec, generate_recsys
    from storage.recsys import save_recsys_dataset

    data = generate_recsys(RecsysSpec(users=30, items=20, interactions=300, seed=1))
    save_recsys_dataset(engine=engine, name="startups", data=data, description="test")


def _settings_files(model: str) -> dict[str, str]:
    """What a user may upload for ``model``: `trendlab config show` of its training config, the
    page's download (the form's training config as YAML) after each preset, and a file that
    sets the fields the form shows as text (a null schedule length, loss weights)."""
    spec = TRAINABLE[model]
    cls = spec.training_config_class
    shown = CliRunner().invoke(cli_app, ["config", "show", cls.__name__])
    assert shown.exit_code == 0, shown.output
    files = {"config show": shown.output}
    for preset in spec.presets:
        files[f"download after {preset}"] = spec.preset_configs(preset)[1].to_yaml()
    changed = cls().to_dict()
    changed["scheduler"]["total_epochs"] = 7
    if "horizon_weights" in changed.get("loss", {}):
        changed["loss"]["horizon_weights"] = {"7d": 2.0}
    files["text fields set"] = cls.from_dict(changed).to_yaml()
    return files


@pytest.mark.parametrize("model", list(TRAINABLE))
def test_the_train_page_accepts_every_settings_file_the_product_writes(
    engine: Engine, model: str
) -> None:
    """Issue 41, item 1: a file with `total_epochs: null` crashed the page ('NoneType' object
    has no attribute 'strip'); every file `config show` and the page's download produce fills
    the form, and the job starts with exactly the file's settings."""
    _fill(engine)
    _stored_recommender_dataset(engine)
    cls = TRAINABLE[model].training_config_class
    for source, text in _settings_files(model).items():
        at = _run("pages/train.py")
        next(s for s in at.selectbox if s.label == "Model").set_value(model).run()
        at.file_uploader[0].upload("settings.yaml", text.encode(), "text/yaml")
        at.run()
        assert not at.exception, (source, at.exception)
        assert not at.error, (source, [e.value for e in at.error])
        next(b for b in at.button if b.label == "Start training").click().run()
        assert not at.exception, (source, at.exception)
        newest = catalog.jobs(engine=engine)[0]
        stored = catalog.run(engine=engine, run_id=newest.run_id).config["training"]
        assert cls.from_dict(stored) == cls.from_dict(parse_yaml(text)), source


def test_a_settings_file_with_a_bad_value_names_the_field_and_keeps_the_form(
    engine: Engine,
) -> None:
    _fill(engine)
    at = _run("pages/train.py")
    at.file_uploader[0].upload("settings.yaml", b"precision: fp64\nepochs: 5\n", "text/yaml")
    at.run()
    assert not at.exception, at.exception
    assert any("precision" in e.value and "settings.yaml" in e.value for e in at.error)
    assert at.number_input(key="training:dual_tower:epochs").value == 100, "nothing applied"
