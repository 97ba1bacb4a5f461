"""The profile encoder: inferred roles, unseen values, and a JSON round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.recsys.features import RecsysEncoder, TextEmbedder, infer_fields
from core.recsys.synthetic import RecsysSpec, generate_recsys


@pytest.fixture(scope="module")
def data():
    return generate_recsys(RecsysSpec(users=40, items=30, interactions=400, seed=4))


def test_roles_are_inferred_from_the_values(data) -> None:
    users = infer_fields(data.users, "user_id")
    assert users.categorical == ["seniority", "location"]
    assert users.multi == ["skills", "interests"] and users.numeric == ["years_experience"]
    assert users.text == "bio"
    items = infer_fields(data.items, "item_id")
    assert items.text == "description" and "name" not in items.categorical


def test_the_encoder_survives_json_and_maps_unseen_values_to_other(data) -> None:
    encoder = RecsysEncoder.fit(data.users, data.items)
    again = RecsysEncoder.from_json(encoder.to_json())
    np.testing.assert_allclose(again.items(data.items), encoder.items(data.items), atol=1e-6)
    assert encoder.users(data.users).shape == (40, encoder.user_dim)
    stranger = data.users.head(1).assign(location="atlantis", skills="cobol")
    row = encoder.user.transform(stranger)[0]
    locations = encoder.user.values["location"]
    start = len(encoder.user.values["seniority"]) + 1
    assert row[start + len(locations)] == 1.0, "the 'other' slot of location"
    assert ("interests", "sector") in encoder.matching_fields()
    with pytest.raises(ValueError, match="not a Trendlab recommender encoder"):
        RecsysEncoder.from_json('{"format": 7}')


def test_text_embedding_matches_sklearn_tfidf_svd() -> None:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["payments banking ledger", "solar grid energy", "banking credit wallet", "grid carbon"]
    embedder = TextEmbedder.fit(texts, dim=2)
    vectorizer = TfidfVectorizer(token_pattern=r"(?u)\b\w[\w-]+\b", sublinear_tf=True)
    svd = TruncatedSVD(n_components=2, random_state=0).fit(vectorizer.fit_transform(texts))
    expected = svd.transform(vectorizer.transform(texts))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.transform(texts), expected, atol=1e-6)
    assert not embedder.transform(["nothing known here"]).any()


def test_sentence_transformers_never_download() -> None:
    from core.recsys.features import SentenceEmbedder

    with pytest.raises(ValueError, match=r"sentence-transformers|no sentence-transformer model"):
        SentenceEmbedder("/nonexistent/model")


def test_a_profile_without_a_needed_column_is_named(data) -> None:
    encoder = RecsysEncoder.fit(data.users, data.items)
    with pytest.raises(ValueError, match="skills"):
        encoder.users(pd.DataFrame({"user_id": ["x"], "bio": ["hi"]}))


def test_the_sentence_backend_is_asked_for_by_config_and_never_downloads(data) -> None:
    from core.config import ConfigError
    from core.recsys.config import TwoTowerConfig

    with pytest.raises(ConfigError, match="sentence_model_path"):
        TwoTowerConfig(text_backend="sentence_transformers")
    with pytest.raises(ValueError, match=r"sentence-transformers|no sentence-transformer model"):
        RecsysEncoder.fit(
            data.users,
            data.items,
            text_backend="sentence_transformers",
            sentence_model_path="/nonexistent/model",
        )
