"""Data: build a dataset (synthetic, bundled or uploaded files), then explore what is stored."""

import datetime as dt

import pandas as pd
import plotly.express as px
import streamlit as st

from core.import_problems import ImportFailed
from core.market.config import DEFAULT_TICKERS, DataConfig
from core.market.importers import ImportOptions, parse_mapping
from core.market.labels import label_meaning
from core.market.sources import MarketData, bundled_config, bundled_data, synthetic_data
from core.market.uses import MIN_CROSS_SECTION
from pages import charts
from pages.access import refused
from pages.recsys_explore import explore
from pages.shared import data_home, engine, said
from services import catalog
from services.catalog import StorageError
from services.datasets import (
    coverage_of,
    import_market_uploads,
    reused_sentence,
    store_market_dataset,
)
from services.market.updates import update_market_dataset

st.title("Data")
st.caption("Datasets of context features, stock features and labels, stored in the database.")


def save(name: str, build, config: DataConfig, description: str) -> None:
    """Build with the spinner showing, store, and report reuse or the stored size."""
    if not name.strip():
        st.error("Give the dataset a name.")
        return
    try:
        with st.spinner("Building features and labels..."):
            dataset, reused = store_market_dataset(
                engine=engine(),
                name=name.strip(),
                data=build(),
                config=config,
                description=description,
            )
    except (StorageError, ValueError) as error:
        st.error(said(error))
        return
    if reused:
        st.info(reused_sentence(name.strip(), dataset.name))
    else:
        st.success(f"Stored {dataset.name!r}: {dataset.row_count:,} rows.")


def named(upload) -> tuple[str, bytes]:
    """An uploaded file as the importer takes it: its name and its bytes."""
    return upload.name, upload.getvalue()


def left_out_lines(data: MarketData) -> list[str]:
    """What the price import left out (rows by reason, short tickers), one line per file."""
    left_out = data.notes.get("left_out")
    return left_out.describe() if left_out else []


def show_problems(failure: ImportFailed) -> None:
    """The problems of a failed import as a table: file, line or row, column, problem."""
    shown = len(failure.problems)
    more = f" (the first {shown} are listed)" if failure.total > shown else ""
    st.error(f"The import failed; nothing was stored. {failure.total} problem(s){more}:")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "file": p.file,
                    "line / row": None if p.row is None else p.row + int(p.csv),  # CSV header: 1
                    "column": p.column,
                    "problem": p.message,
                }
                for p in failure.problems
            ]
        ),
        hide_index=True,
    )


def update_form() -> None:
    """Newer rows for a stored market dataset, read as an upload is and merged in: the
    dataset is rebuilt as its next version, the previous one kept as NAME@vK."""
    current = [
        d.name for d in catalog.datasets(engine=engine(), recommender=False) if "@v" not in d.name
    ]
    if not current:
        st.info("No stored market dataset to update yet.")
        return
    with st.form("update"):
        name = st.selectbox("Dataset", current)
        prices = st.file_uploader(
            "Newer prices (CSV or Parquet)", type=["csv", "parquet"], accept_multiple_files=True
        )
        news = st.file_uploader("Newer headlines CSV", type=["csv"])
        mapping = st.text_input("Column mapping", placeholder="date=Date,close=Close")
        if not st.form_submit_button("Add the rows and rebuild", type="primary"):
            return
    if not prices:
        st.error("Add at least one prices file.")
        return
    try:
        data, warnings = import_market_uploads(
            home=data_home(),
            prices=[named(p) for p in prices],
            news=named(news) if news else None,
            mapping=parse_mapping(mapping),
            bundled_macro=False,
            options=ImportOptions(appending=True),
        )
        with st.spinner("Rebuilding features and labels..."):
            result = update_market_dataset(engine=engine(), name=name, data=data)
    except ImportFailed as failure:
        show_problems(failure)
        return
    except (StorageError, ValueError) as error:
        st.error(said(error))
        return
    for warning in [*warnings, *left_out_lines(data)]:
        st.warning(warning)
    if result["new_tickers"]:
        tickers = ", ".join(f"{t} ({n:,} rows)" for t, n in result["new_tickers"].items())
        st.warning(
            f"Left out tickers {name!r} does not have: {tickers} (`trendlab data update "
            "--new-tickers` adds them; a file without a ticker column is named after its file)."
        )
    st.success(
        f"Updated {name!r} to version {result['version']}: {result['rows_before']:,} -> "
        f"{result['rows_after']:,} rows, through {result['end_after']}; the previous version "
        f"is kept as {result['archived_as']!r}."
    )


datasets = catalog.datasets(engine=engine())

if not refused("building or uploading datasets"):
    with st.expander("Build a dataset", expanded=not datasets):
        source = st.radio(
            "Source",
            ["Synthetic", "Bundled real data", "Upload files", "Newer rows for a stored dataset"],
            horizontal=True,
        )
        if source == "Synthetic":
            with st.form("synthetic"):
                name = st.text_input("Name", "synthetic")
                tickers = st.text_input("Tickers (comma-separated)", ",".join(DEFAULT_TICKERS))
                left, middle, right = st.columns(3)
                start = left.date_input("First day", dt.date(2015, 1, 1))
                end = middle.date_input("Last day", dt.date(2024, 12, 31))
                seed = right.number_input("Seed", value=42, step=1)
                signal = st.checkbox("Plant the context signal (off: the control case)", True)
                if st.form_submit_button("Build and store", type="primary"):
                    names = [t.strip() for t in tickers.split(",") if t.strip()]
                    config = DataConfig()
                    save(
                        name,
                        lambda: synthetic_data(
                            names,
                            str(start),
                            str(end),
                            seed=int(seed),
                            signal=signal,
                            horizons=config.horizons,
                        ),
                        config,
                        f"synthetic, seed {int(seed)}, "
                        f"{'with' if signal else 'without'} context signal",
                    )
        elif source == "Bundled real data":
            st.write(
                "S&P 500 and NASDAQ daily prices with macro context (VIX, oil, yields, CPI) "
                "from the `arch` package, from 2014-04-01; news and policy are missing."
            )
            with st.form("bundled"):
                name = st.text_input("Name", "indices")
                if st.form_submit_button("Build and store", type="primary"):
                    save(name, bundled_data, bundled_config(), "arch package: S&P 500 and NASDAQ")
        elif source == "Newer rows for a stored dataset":
            update_form()
        else:
            with st.form("upload"):
                name = st.text_input("Name", "imported")
                prices = st.file_uploader(
                    "Prices (CSV or Parquet; long, or one file per ticker)",
                    type=["csv", "parquet"],
                    accept_multiple_files=True,
                )
                news = st.file_uploader(
                    "News headlines CSV (date, ticker, headline[, source])", type=["csv"]
                )
                policy = st.file_uploader(
                    "Policy events CSV (date, type, urgency, sector)", type=["csv"]
                )
                macro = st.file_uploader("Macro series CSV (date, series, value)", type=["csv"])
                bundled_macro = st.checkbox(
                    "Without a macro file, join the bundled macro series (VIX, oil, yields, "
                    "CPI; 2014-02 to 2019-01) where the dates overlap",
                    True,
                )
                mapping = st.text_input("Column mapping", placeholder="date=Date,close=Close")
                if st.form_submit_button("Validate and store", type="primary"):
                    try:
                        columns = parse_mapping(mapping)
                    except ValueError as error:
                        columns = None
                        st.error(f"Column mapping: {error}")
                    if not prices:
                        st.error("Add at least one prices file.")
                    elif columns is not None:
                        try:
                            data, warnings = import_market_uploads(
                                home=data_home(),
                                prices=[named(p) for p in prices],
                                news=named(news) if news else None,
                                policy=named(policy) if policy else None,
                                macro=named(macro) if macro else None,
                                mapping=columns,
                                bundled_macro=bundled_macro,
                            )
                        except ImportFailed as failure:
                            show_problems(failure)
                        except Exception as error:  # a reader's fault, not the file's: say so
                            st.error(
                                "The import stopped on an unexpected error; nothing was stored."
                            )
                            st.exception(error)
                        else:
                            for warning in [*warnings, *left_out_lines(data)]:
                                st.warning(warning)
                            for note in data.notes.get("context", []):
                                st.info(note)
                            save(
                                name,
                                lambda: data,
                                DataConfig(),
                                f"import of {', '.join(p.name for p in prices)}",
                            )

datasets = catalog.datasets(engine=engine())  # with what the form above just stored
if not datasets:
    st.info("No datasets yet.")
    st.stop()


def listed(tickers: list[str], shown: int = 4) -> str:
    """A dataset's tickers in a cell: how many, then the first few."""
    more = ", ..." if len(tickers) > shown else ""
    return f"{len(tickers)}: {', '.join(tickers[:shown])}{more}" if tickers else ""


st.subheader("Stored datasets")
st.dataframe(
    [
        {
            "name": d.name,
            "kind": d.kind,
            "rows": d.row_count,
            "from": d.start_date,
            "to": d.end_date,
            "tickers": listed(d.tickers),
            "features": len(d.features),
            "source": d.source,
            "created": d.created_at,
        }
        for d in datasets
    ],
    hide_index=True,
    column_config={
        "name": st.column_config.TextColumn("name", pinned=True),
        "rows": st.column_config.NumberColumn("rows", format="localized"),
        "tickers": st.column_config.TextColumn("tickers", help="How many, then the first few."),
        "features": st.column_config.NumberColumn("features", help="Feature columns."),
        "source": st.column_config.TextColumn("source", width="medium"),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    },
)
kinds = {d.name: "recommender" if d.recommender else "market" for d in datasets}
chosen = st.selectbox(
    "Explore", [d.name for d in datasets], format_func=lambda n: f"{n} ({kinds[n]})"
)
dataset = next(d for d in datasets if d.name == chosen)
with st.expander("Recipe"):
    st.json(dataset.recipe)
if dataset.recommender:
    try:
        explore(catalog.recsys_data(engine=engine(), name=chosen))
    except StorageError as error:
        st.error(said(error))
    st.stop()
try:
    frame = catalog.dataset_frame(engine=engine(), name=chosen)
except StorageError as error:
    st.error(said(error))
    st.stop()

preview, prices, coverage, labels = st.tabs(["Rows", "Prices", "Feature coverage", "Labels"])
with preview:
    st.dataframe(frame.head(200), hide_index=True)
with prices:
    if "close" not in frame.columns:
        st.info("This dataset was stored before raw prices were kept with it; rebuild it to chart.")
    else:
        left, right = st.columns([1, 2])
        ticker = left.selectbox("Ticker", sorted(frame["ticker"].unique()))
        rows = frame[frame["ticker"] == ticker].sort_values("date")
        first, last = rows["date"].min().date(), rows["date"].max().date()
        start, end = right.slider(
            "Dates",
            min_value=first,
            max_value=last,
            value=(max(first, last - dt.timedelta(days=365)), last),
        )
        shown = rows[rows["date"].between(pd.Timestamp(start), pd.Timestamp(end))]
        charts.show(st, charts.candlestick_figure(shown, ticker), key="candles")
with coverage:
    shares = coverage_of(frame)
    st.caption(
        "Share of rows on which each context group is observed (mask 1: every feature of the "
        "group known as of that date; 0: unknown, values left empty)."
    )
    places = st.columns(len(shares.overall))
    for place, (group, share) in zip(places, shares.overall.items(), strict=True):
        place.metric(group, f"{share:.0%}")
    macro_source = dataset.recipe.get("macro")
    if macro_source:
        spans = ", ".join(f"{n} {a}..{b}" for n, (a, b) in macro_source.get("series", {}).items())
        origin = {
            "bundled": f"the series bundled with {macro_source.get('package', 'arch')}",
            "file": f"your file {macro_source.get('name')}",
        }.get(macro_source["source"], "none")
        st.caption(f"Macro context: {origin}" + (f" ({spans})." if spans else "."))
    by_ticker, by_year = st.columns(2)
    for place, by, key in ((by_ticker, "ticker", "coverage"), (by_year, "year", "coverage_year")):
        table = shares.table(by)
        table.index = table.index.astype(str)
        charts.show(
            place,
            px.imshow(
                table,
                zmin=0,
                zmax=1,
                text_auto=".2f",
                aspect="auto",
                color_continuous_scale="Blues",
                title=f"Share of rows with each context group observed, per {by}",
            ),
            key=key,
        )
with labels:
    recipe_config = DataConfig.from_dict(dataset.recipe.get("data_config", DataConfig().to_dict()))
    meanings = {
        column: label_meaning(
            column,
            relevance_threshold=recipe_config.relevance_threshold,
            min_cross_section=MIN_CROSS_SECTION,
        )
        for column in frame.columns
    }
    st.dataframe(
        pd.DataFrame([{"label": c, "meaning": m} for c, m in meanings.items() if m is not None]),
        hide_index=True,
        column_config={"meaning": st.column_config.TextColumn("meaning", width="large")},
    )
    label_columns = [
        c for c in frame.columns if c.startswith(("trend_", "relevance_")) and "class" not in c
    ]
    long = frame[label_columns].melt(var_name="label", value_name="value").dropna()
    charts.show(
        st,
        px.histogram(
            long,
            x="value",
            facet_col="label",
            facet_col_wrap=2,
            nbins=40,
            height=480,
            title="Distribution of each label (rows per bin)",
            labels={"value": "label value"},
        ),
        key="labels",
    )
