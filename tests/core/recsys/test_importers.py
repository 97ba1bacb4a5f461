"""Importing recommender data: any domain, event mapping, and precise problems."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.import_problems import ImportFailed
from core.recsys.importers import import_recsys, parse_events


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
        "u1,s3,,2024-01-03\n"
        "u2,s3,view,yesterday\n",
    )
    users = _write(tmp_path, "users.csv", "user_id,skills\nu1,python\nu1,go\n")
    with pytest.raises(ImportFailed) as caught:
        import_recsys(events, users=users)
    text = str(caught.value)
    assert "events.csv, line 3, column 'interaction': 'share' is not an interaction type" in text
    assert "events.csv, line 4, column 'interaction': missing value" in text
    assert "events.csv, line 5, column 'timestamp': 'yesterday' is not a date" in text
    assert "users.csv, line 3, column 'user_id': user_id 'u1' appears twice" in text
    assert "user_id(s) not in users.csv" in text and "'u2'" in text


def test_a_purchase_log_imports_as_it_comes(tmp_path: Path) -> None:
    """No rating or interaction column: every row is a purchase; the quantity is kept; a
    repeated (user, item, timestamp) is merged with its quantities summed, never refused;
    the same item bought again later stays a second event."""
    log = _write(
        tmp_path,
        "orders.csv",
        "user_id,item_id,timestamp,quantity\n"
        "17850,21730,2010-12-01T08:26:00,6\n"
        "17850,21730,2010-12-01T08:26:00,2\n"
        "17850,21730,2010-12-02T10:00:00,1\n"
        "13047,22752,2010-12-01T09:00:00,3\n",
    )
    data = import_recsys(log)
    frame = data.interactions
    assert frame["interaction"].eq("purchase").all()
    assert data.recipe["events_read_as"].startswith("every row as one purchase")
    assert data.recipe["merged_repeats"] == 1
    repeated = frame[(frame["user_id"] == "17850") & (frame["timestamp"].dt.day == 1)]
    assert repeated["amount"].tolist() == [8.0], "the two rows of one minute are one event"
    assert len(frame) == 3 and data.recipe["left_out"] == {}


def test_the_raw_retail_log_leaves_out_what_is_no_purchase_and_counts_it(tmp_path: Path) -> None:
    """The UCI log's shape, gzip-compressed: anonymous rows, a cancellation (C invoice,
    negative quantity), a zero quantity; customer ids written as 17850.0."""
    import gzip

    text = (
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
        "536365,71053,WHITE LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n"
        "536366,22633,HAND WARMER,6,2010-12-01 08:28:00,1.85,,United Kingdom\n"
        "C536379,85123A,WHITE HEART,-1,2010-12-01 09:41:00,2.55,17850.0,United Kingdom\n"
        "536380,22139,RETROSPOT,0,2010-12-01 09:45:00,4.25,13047.0,United Kingdom\n"
        "536381,22139,RETROSPOT,2,2010-12-01 09:46:00,4.25,13047.0,United Kingdom\n"
    )
    path = tmp_path / "transactions-raw.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    data = import_recsys(
        path, mapping={"user_id": "CustomerID", "item_id": "StockCode", "timestamp": "InvoiceDate"}
    )
    assert data.recipe["left_out"] == {
        "rows without a user or an item": 1,
        "cancellations": 1,
        "rows with quantity 0 or below (returns)": 1,
    }
    assert sorted(data.interactions["user_id"].unique()) == ["13047", "17850"]
    assert data.interactions["amount"].tolist() == [6.0, 6.0, 2.0]


def test_a_ratings_file_without_options_reads_every_rating_as_an_interaction(
    tmp_path: Path,
) -> None:
    """RecBole's way: a tab-separated atomic ratings file, no --events, no threshold."""
    inter = _write(
        tmp_path,
        "ml.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "196\t242\t3\t881250949\n"
        "186\t302\t1\t891717742\n"
        "22\t377\t5\t878887116\n",
    )
    data = import_recsys(inter)
    assert data.interactions["interaction"].eq("like").all() and len(data.interactions) == 3
    assert "every rating as one positive interaction" in data.recipe["events_read_as"]
    assert "--positive-threshold" in data.recipe["events_read_as"]


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


def test_a_recbole_atomic_file_with_unix_seconds_imports_with_its_companions(
    tmp_path: Path,
) -> None:
    inter = _write(
        tmp_path,
        "ml.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "196\t242\t3\t881250949\n"
        "186\t302\t4\t891717742\n"
        "196\t377\t5\t878887116.0\n",
    )
    _write(
        tmp_path,
        "ml.user",
        "user_id:token\tage:float\tgender:token\tzip_code:token\n196\t49\tM\t55105\n186\t39\tF\t00000\n",
    )
    _write(
        tmp_path,
        "ml.item",
        "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
        "242\tKolya\tComedy\n"
        "302\tL.A. Confidential\tCrime Film-Noir Mystery\n"
        "377\tHeavyweights\tChildren Comedy\n",
    )
    data = import_recsys(inter, positive_threshold=4)
    assert data.interactions["timestamp"].min() == pd.Timestamp("1997-11-07 07:18:36")
    assert data.recipe["timestamp_format"] == "Unix seconds (UTC)"
    assert set(data.recipe["files"]) == {"ml.inter", "ml.user", "ml.item"}
    by_item = data.interactions.set_index("item_id")["interaction"]
    assert by_item.to_dict() == {"302": "like", "377": "like"}, "rating >= 4 is positive"
    assert data.recipe["below_threshold"] == 1, "the rating of 3 is left out, and counted"
    assert data.users["age"].dtype == float and data.users["zip_code"].tolist() == [
        "55105",
        "00000",
    ]
    items = data.items.set_index("item_id")
    assert items.loc["302", "class"] == "Crime;Film-Noir;Mystery", "token_seq -> a list"


def test_a_semicolon_file_with_unix_milliseconds_imports(tmp_path: Path) -> None:
    events = _write(
        tmp_path,
        "events.csv",
        "user_id;item_id;rating;timestamp\n"
        "a;m1;5;1700000000000\n"
        "a;m2;2;1700000000500\n"
        "a;m3;1;1700000000600\n"
        "b;m1;4;1700086400000\n",
    )
    data = import_recsys(events, events=parse_events("5=favorite,1=dislike"), positive_threshold=4)
    assert data.recipe["timestamp_format"] == "Unix milliseconds (UTC)"
    assert data.interactions["timestamp"].tolist() == [
        pd.Timestamp("2023-11-14 22:13:20"),
        pd.Timestamp("2023-11-14 22:13:20.600"),
        pd.Timestamp("2023-11-15 22:13:20"),
    ]
    assert data.interactions["interaction"].tolist() == ["favorite", "dislike", "like"]
    assert data.recipe["below_threshold"] == 1, "the 2 is left out; the 1 is mapped"


def test_a_timestamp_column_of_mixed_formats_is_refused_with_its_line(tmp_path: Path) -> None:
    events = _write(
        tmp_path,
        "events.tsv",
        "user_id\titem_id\tinteraction\ttimestamp\n"
        "u1\ts1\tapply\t1700000000\n"
        "u1\ts2\tview\t1700000100\n"
        "u2\ts1\tclick\t2024-01-03\n"
        "u2\ts2\tclick\t1700000000000\n",
    )
    with pytest.raises(ImportFailed) as caught:
        import_recsys(events)
    text = str(caught.value)
    assert (
        "events.tsv, line 4, column 'timestamp': '2024-01-03' reads as ISO 8601 dates, but the "
        "column holds Unix seconds (UTC) (line 2: '1700000000')" in text
    )
    assert "events.tsv, line 5, column 'timestamp': '1700000000000' reads as Unix milliseconds" in (
        text
    )
    assert caught.value.total == 2


def test_a_rating_that_is_no_number_under_a_threshold_is_a_row_problem(tmp_path: Path) -> None:
    events = _write(
        tmp_path,
        "r.csv",
        "user_id,item_id,rating,timestamp\na,m1,4,2024-01-01\na,m2,good,2024-01-02\n",
    )
    with pytest.raises(ImportFailed, match=r"r\.csv, line 3, column 'rating': 'good' is not a num"):
        import_recsys(events, positive_threshold=4)


def test_a_file_without_a_header_line_is_named_as_such(tmp_path: Path) -> None:
    """MovieLens's u.data: tab separated, no header. The refusal says the first line is data
    and what to add, not only that the columns are missing."""
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    with pytest.raises(ImportFailed) as failed:
        import_recsys(path, positive_threshold=4)
    text = str(failed.value)
    assert "u.data: missing column(s) user_id, item_id;" in text
    assert "Line 1 holds values, not column names: the file has no header line" in text
    named = tmp_path / "named.csv"
    named.write_text("user,item,stars,time\n1,2,3,881250949\n")
    with pytest.raises(ImportFailed) as failed:
        import_recsys(named, positive_threshold=4)
    assert "no header line" not in str(failed.value), "a header of names is a header"


def test_interactions_naming_user_id_twice_are_refused(tmp_path: Path) -> None:
    """Issue 41, item 9: which user_id was read was anyone's guess."""
    events = _write(
        tmp_path, "events.csv", "user_id,item_id,user_id,timestamp\nu1,i1,u2,2024-01-01\n"
    )
    with pytest.raises(ImportFailed) as refused:
        import_recsys(events)
    assert str(refused.value).splitlines()[1] == (
        "events.csv, column 'user_id': the header names this column twice (columns 1, 3); "
        "keep one, or rename the others"
    )
    atomic = _write(
        tmp_path, "log.inter", "user_id:token\titem_id:token\tuser_id:float\ttimestamp:float\n"
    )
    with pytest.raises(ImportFailed, match="column 'user_id': the header names this column twice"):
        import_recsys(atomic)


def test_a_negative_unix_time_is_refused(tmp_path: Path) -> None:
    """Issue 41, item 11: -5 read as 1969-12-31 23:59:55."""
    events = _write(tmp_path, "events.csv", "user_id,item_id,timestamp\nu1,i1,-5\nu1,i2,100\n")
    with pytest.raises(ImportFailed) as refused:
        import_recsys(events)
    assert str(refused.value).splitlines()[1:] == [
        "events.csv, line 2, column 'timestamp': '-5' is a negative Unix time; Unix times count "
        "from 1970-01-01"
    ]


def test_a_timestamp_of_hundreds_of_digits_is_a_row_problem_not_a_crash(tmp_path: Path) -> None:
    """The fuzzer's 400-digit Unix time overflowed the float cast (OverflowError)."""
    path = _write(
        tmp_path,
        "huge.csv",
        "user_id,item_id,timestamp\nu1,s1,1700000000\nu2,s2," + "9" * 400 + "\n",
    )
    with pytest.raises(ImportFailed) as failed:
        import_recsys(path)
    assert "huge.csv, line 3, column 'timestamp'" in str(failed.value)
