"""The Train page's YAML upload fills the form (issue 23, item 2): it must not write the state of
widgets the page has already drawn."""

from __future__ import annotations

from sqlalchemy import Engine

from services import catalog
from tests.pages.test_pages import _fill, _run


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
