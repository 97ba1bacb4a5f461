"""Profile encoders that serialise to JSON (never pickle).

A profile table (users or items) has an id column and fields of four roles, inferred from
the data (``infer_fields``) or given:

- categorical (one value per row) -> one-hot over the values seen when fitting (the
  ``MAX_VALUES`` most frequent), plus an "other" slot for the rest;
- multi (';'-separated values, e.g. skills) -> multi-hot over the values seen (the
  ``MAX_VALUES`` most frequent);
- numeric -> log1p if every value is >= 0 and the spread is wide, then standardised;
- text (one free-text column) -> TF-IDF (unigrams, sublinear tf, L2) projected by a
  truncated SVD to ``text_dim`` components.

Users and items share one text embedder, fitted on bios and descriptions together, so the
content-based engine can compare a user's words with an item's in one space. Sentence
transformer embeddings are an optional extra that only loads a model already on disk.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

TOKEN = re.compile(r"(?u)\b\w[\w-]+\b")
MAX_VALUES = 1000
"""Most values one-hot or multi-hot encoded per column; rarer values share the other slot."""
NEAR_UNIQUE = 0.5
"""A text column with more distinct values than this share of its rows names each row (a
title, a zip code): free text when it has words, else left out, never one-hot."""


@dataclass
class Fields:
    """The role of each profile column."""

    id: str
    categorical: list[str] = field(default_factory=list)
    multi: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    text: str | None = None


def infer_fields(frame: pd.DataFrame, id_column: str) -> Fields:
    """Numbers are numeric; text with ';' lists is multi (free text when the lists hold more
    than ``MAX_VALUES`` distinct values); the column with the longest free text (mean over 4
    words) is text; other text columns are categorical, unless nearly every row has its own
    value (``NEAR_UNIQUE``): such a column is text when it has words (titles) and left out
    when it has none (zip codes). ``name`` is for display only."""
    fields = Fields(id=id_column)
    words: dict[str, float] = {}
    near_unique = set()
    for column in frame.columns:
        if column in (id_column, "name"):
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            fields.numeric.append(column)
            continue
        text = values.fillna("").astype(str)
        count = text.str.split().str.len().mean() if len(text) else 0.0
        if text.str.contains(";").mean() > 0.2:
            distinct = {v for cell in text for v in split_values(cell)}
            if len(distinct) <= MAX_VALUES:
                fields.multi.append(column)
            else:
                words[column] = count + 4  # a long list of tokens reads as words
        elif count > 4:
            words[column] = count
        elif text.nunique() > NEAR_UNIQUE * len(text) and len(text) > 20:
            near_unique.add(column)
            if count >= 2:
                words[column] = count
        else:
            fields.categorical.append(column)
    if words:
        fields.text = max(words, key=words.get)
        fields.categorical += [c for c in words if c != fields.text and c not in near_unique]
    return fields


def split_values(value: Any) -> list[str]:
    return [v.strip() for v in str(value).split(";") if v.strip()] if pd.notna(value) else []


@dataclass
class TextEmbedder:
    """TF-IDF + truncated SVD with its fitted state as plain lists."""

    vocabulary: list[str]
    idf: list[float]
    components: list[list[float]]

    @classmethod
    def fit(cls, texts: list[str], dim: int = 32, max_words: int = 3000, seed: int = 0):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(
            token_pattern=TOKEN.pattern, sublinear_tf=True, max_features=max_words
        )
        matrix = vectorizer.fit_transform(texts)
        dim = max(1, min(dim, matrix.shape[1] - 1, matrix.shape[0] - 1))
        svd = TruncatedSVD(n_components=dim, random_state=seed).fit(matrix)
        vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
        return cls(vocabulary, vectorizer.idf_.tolist(), svd.components_.tolist())

    @property
    def dim(self) -> int:
        return len(self.components)

    def transform(self, texts: list[str]) -> np.ndarray:
        """(n, dim) unit-length rows (zeros for a text with no known word). The TF-IDF
        matrix is sparse, so a catalogue of any size fits."""
        index = {word: i for i, word in enumerate(self.vocabulary)}
        rows, columns = [], []
        for row, text in enumerate(texts):
            for word in TOKEN.findall(str(text).lower()):
                if word in index:
                    rows.append(row)
                    columns.append(index[word])
        counts = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, columns)), shape=(len(texts), len(self.vocabulary))
        )  # duplicates are summed: term counts
        counts.data = (1 + np.log(counts.data)) * np.asarray(self.idf)[counts.indices]
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        tfidf = sparse.diags(1 / np.maximum(norms, 1e-12)) @ counts
        embedded = np.asarray(tfidf @ np.asarray(self.components).T)
        return embedded / np.maximum(np.linalg.norm(embedded, axis=1, keepdims=True), 1e-12)


class SentenceEmbedder:
    """Optional: a sentence-transformers model read from a local folder only."""

    def __init__(self, path: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ValueError(
                "text_backend 'sentence_transformers' needs the sentence-transformers package; "
                "install it, or use the default 'tfidf'"
            ) from None
        if not Path(path).is_dir():
            raise ValueError(
                f"no sentence-transformer model folder at {path}; models never download"
            )
        self.path = path
        self.model = SentenceTransformer(path, local_files_only=True)

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def transform(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), normalize_embeddings=True))


@dataclass
class ProfileEncoder:
    """One table's encoder: fitted vocabularies and numeric scalings."""

    fields: Fields
    values: dict[str, list[str]]
    scaling: dict[str, list[float]]  # column -> [log (0/1), mean, std]

    @classmethod
    def fit(cls, frame: pd.DataFrame, fields: Fields) -> ProfileEncoder:
        values = {c: _most_frequent(frame[c].dropna().astype(str)) for c in fields.categorical}
        for column in fields.multi:
            listed = pd.Series([v for cell in frame[column] for v in split_values(cell)])
            values[column] = _most_frequent(listed)
        scaling = {}
        for column in fields.numeric:
            raw = frame[column].astype(float).fillna(frame[column].median())
            use_log = bool((raw >= 0).all() and raw.max() > 10 * max(raw.median(), 1))
            shown = np.log1p(raw) if use_log else raw
            scaling[column] = [float(use_log), float(shown.mean()), float(shown.std() or 1.0)]
        return cls(fields, values, scaling)

    @property
    def width(self) -> int:
        slots = sum(len(self.values[c]) + 1 for c in self.fields.categorical)
        return slots + sum(len(self.values[c]) for c in self.fields.multi) + len(self.scaling)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, width): one-hot, multi-hot and standardised numbers, in field order."""
        missing = [
            c
            for c in [*self.fields.categorical, *self.fields.multi, *self.fields.numeric]
            if c not in frame.columns
        ]
        if missing:
            raise ValueError(f"profile lacks the column(s) {', '.join(missing)}")
        blocks = []
        for column in self.fields.categorical:
            known = {v: i for i, v in enumerate(self.values[column])}
            block = np.zeros((len(frame), len(known) + 1), dtype=np.float32)
            slots = [known.get(str(v), len(known)) for v in frame[column]]
            block[np.arange(len(frame)), slots] = 1
            blocks.append(block)
        for column in self.fields.multi:
            known = {v: i for i, v in enumerate(self.values[column])}
            block = np.zeros((len(frame), len(known)), dtype=np.float32)
            for row, cell in enumerate(frame[column]):
                for value in split_values(cell):
                    if value in known:
                        block[row, known[value]] = 1
            blocks.append(block)
        for column in self.fields.numeric:
            use_log, mean, std = self.scaling[column]
            raw = frame[column].astype(float).fillna(mean).to_numpy()
            shown = np.log1p(np.maximum(raw, 0)) if use_log else raw
            blocks.append(((shown - mean) / std).astype(np.float32)[:, None])
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0), dtype=np.float32)


def _most_frequent(values: pd.Series) -> list[str]:
    """The ``MAX_VALUES`` most frequent values (ties by value), sorted."""
    counts = values.value_counts()
    if len(counts) > MAX_VALUES:
        order = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
        return sorted(value for value, _ in order[:MAX_VALUES])
    return sorted(counts.index)


@dataclass
class RecsysEncoder:
    """Users and items encoded for the towers: profile fields + shared text embedding."""

    user: ProfileEncoder
    item: ProfileEncoder
    text: TextEmbedder | SentenceEmbedder | None

    @classmethod
    def fit(
        cls,
        users: pd.DataFrame,
        items: pd.DataFrame,
        *,
        user_fields: Fields | None = None,
        item_fields: Fields | None = None,
        text_dim: int = 32,
        seed: int = 0,
        text_backend: str = "tfidf",
        sentence_model_path: str | None = None,
    ) -> RecsysEncoder:
        user_fields = user_fields or infer_fields(users, "user_id")
        item_fields = item_fields or infer_fields(items, "item_id")
        texts = []
        if user_fields.text:
            texts += users[user_fields.text].fillna("").astype(str).tolist()
        if item_fields.text:
            texts += items[item_fields.text].fillna("").astype(str).tolist()
        if not texts:
            text = None
        elif text_backend == "sentence_transformers":
            text = SentenceEmbedder(sentence_model_path or "")
        else:
            text = TextEmbedder.fit(texts, text_dim, seed=seed)
        return cls(
            ProfileEncoder.fit(users, user_fields), ProfileEncoder.fit(items, item_fields), text
        )

    def text_vectors(self, frame: pd.DataFrame, side: str) -> np.ndarray:
        column = (self.user if side == "user" else self.item).fields.text
        if self.text is None or column is None:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return self.text.transform(frame[column].fillna("").astype(str).tolist()).astype(np.float32)

    def users(self, frame: pd.DataFrame) -> np.ndarray:
        return np.hstack([self.user.transform(frame), self.text_vectors(frame, "user")])

    def items(self, frame: pd.DataFrame) -> np.ndarray:
        return np.hstack([self.item.transform(frame), self.text_vectors(frame, "item")])

    @property
    def user_dim(self) -> int:
        return self.user.width + (self.text.dim if self.text and self.user.fields.text else 0)

    @property
    def item_dim(self) -> int:
        return self.item.width + (self.text.dim if self.text and self.item.fields.text else 0)

    def matching_fields(self) -> list[tuple[str, str]]:
        """(user column, item column) pairs that share most of their values (skills and
        skills, interests and sector, location and location): the content engine's matches."""
        pairs = []
        for user_column, user_values in self.user.values.items():
            for item_column, item_values in self.item.values.items():
                shared = set(user_values) & set(item_values)
                if len(shared) >= 0.5 * min(len(user_values), len(item_values)) and shared:
                    pairs.append((user_column, item_column))
        return pairs

    def to_json(self) -> str:
        text = (
            {"sentence_model": self.text.path}
            if isinstance(self.text, SentenceEmbedder)
            else (asdict(self.text) if self.text else None)
        )
        return json.dumps(
            {"format": 1, "user": asdict(self.user), "item": asdict(self.item), "text": text}
        )

    @classmethod
    def from_json(cls, text: str) -> RecsysEncoder:
        data = json.loads(text)
        if data.get("format") != 1:
            raise ValueError("not a Trendlab recommender encoder (format 1)")

        def profile(part: dict) -> ProfileEncoder:
            return ProfileEncoder(Fields(**part["fields"]), part["values"], part["scaling"])

        stored = data["text"]
        if stored and "sentence_model" in stored:
            text = SentenceEmbedder(stored["sentence_model"])
        else:
            text = TextEmbedder(**stored) if stored else None
        return cls(profile(data["user"]), profile(data["item"]), text)
