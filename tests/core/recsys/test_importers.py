"""Importing recommender data: any domain, event mapping, and precise problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.recsys.importers import import_recsys, parse_events
from core.tables import ImportFailed


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ratings_of_another_domain_map_to_seed_types(tmp_path: Path) -> None:
    ratings = _write(
        tmp_path,
        "ratings.csv",
        "UserID,MovieID,Stars,When\n"
        "a,m1,5,2024-01-01 10:00\n"
        "a,m2,1,2024-01-02 09:00\n"
        "b,m1,3,2024-01-03 12:30\n",
    )
    movies = _write(tmp_path, "movies.csv", "item_id,genre,year\nm1,drama,1999\nm2,comedy,2004\n")
    data = import_recsys(
        ratings,
        items=movies,
        mapping={"user_id": "UserID", "item_id": "MovieID", "rating": "Stars", "timestamp": "When"},
        events=parse_events("5=favorite,3=click,1=dislike"),
    )
    assert list(data.interactions["interaction"]) == ["favorite", "dislike", "click"]
    assert data.interactions["timestamp"].iloc[0].hour == 10, "time of day is kept"
    assert list(data.users["user_id"]) == ["a", "b"], "users without a file are their ids"
    assert data.items["year"].dtype == float and data.items["genre"].tolist() == ["drama", "comedy"]
    assert data.recipe["source"] == "import_recsys" and "ratings.csv" in data.recipe["files"]


def test_every_problem_is_reported_with_file_line_and_column(tmp_path: Path) -> None:
    events = _write(
        tmp_path,
        "events.csv",
        "user_id,item_id,interaction,timestamp\n"
        "u1,s1,apply,2024-01-01\n"
        "u1,s2,share,2024-01-02\n"
        ",s1,view,2024-01-03\n"
        "u2,s3,view,yesterday\n"
        "u1,s1,apply,2024-01-01\n",
    )
    users = _write(tmp_path, "users.csv", "user_id,skills\nu1,python\nu1,go\n")
    with pytest.raises(ImportFailed) as caught:
        import_recsys(events, users=users)
    text = str(caught.value)
    assert "events.csv, line 3, column 'interaction': 'share' is not an interaction type" in text
    assert "events.csv, line 4, column 'user_id': missing value" in text
    assert "events.csv, line 5, column 'timestamp': 'yesterday' is not a date" in text
    assert "events.csv, line 6: the same (user_id, item_id, timestamp) appears twice" in text
    assert "users.csv, line 3, column 'user_id': user_id 'u1' appears twice" in text
    assert "user_id(s) not in users.csv" in text and "'u2'" in text


def test_missing_columns_and_bad_event_mappings_are_named(tmp_path: Path) -> None:
    bare = _write(tmp_path, "bare.csv", "user,item\nu1,s1\n")
    with pytest.raises(ImportFailed, match=r"bare\.csv: missing column\(s\) user_id, item_id"):
        import_recsys(bare)
    with pytest.raises(ValueError, match="'share' is not one of"):
        parse_events("liked=share")


def test_timestamps_with_mixed_offsets_keep_their_wall_clock_time(tmp_path: Path) -> None:
    events = _write(
        tmp_path,
        "events.csv",
        "user_id,item_id,interaction,timestamp\n"
        "u1,s1,apply,2024-01-01T10:00:00+02:00\n"
        "u1,s2,view,2024-01-02T09:00:00-05:00\n"
        "u2,s1,click,2024-01-03 12:30\n",
    )
    data = import_recsys(events)
    times = data.interactions["timestamp"]
    assert [t.strftime("%Y-%m-%d %H:%M") for t in times] == [
        "2024-01-01 10:00",
        "2024-01-02 09:00",
        "2024-01-03 12:30",
    ]


def test_a_bad_timestamp_among_offsets_is_a_row_problem(tmp_path: Path) -> None:
    events = _write(
        tmp_path,
        "events.csv",
        "user_id,item_id,interaction,timestamp\n"
        "u1,s1,apply,2024-01-01T10:00:00+02:00\n"
        "u1,s2,view,2024-01-02T09:00:00-05:00\n"
        "u2,s2,view,2024-01-02T09:00:00+25:00\n",
    )
    with pytest.raises(ImportFailed) as caught:
        import_recsys(events)
    assert "events.csv, line 4, column 'timestamp': '2024-01-02T09:00:00+25:00' is not a date" in (
        str(caught.value)
    )


def test_problems_are_capped_per_file_and_counted_exactly(tmp_path: Path) -> None:
    rows = "".join(f"u{i},s1,share,2024-01-01\n" for i in range(300))
    events = _write(tmp_path, "events.csv", "user_id,item_id,interaction,timestamp\n" + rows)
    with pytest.raises(ImportFailed) as caught:
        import_recsys(events)
    assert len(caught.value.problems) == 50 and caught.value.total == 300
    assert str(caught.value).endswith("... and 280 more problems")
