"""`trendlab data download ...`: daily prices (Yahoo) and macro series (FRED) written as
import files. Off unless TRENDLAB_ALLOW_DOWNLOADS=1; responses are cached in the data home."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail
from core.import_problems import ImportFailed
from core.market.connectors import (
    ALLOW_ENV,
    FRED_SERIES,
    Download,
    DownloadFailed,
    DownloadsDisabled,
    download_macro,
    download_prices,
)
from storage import DataHome, DataHomeError

app = typer.Typer(
    help=f"Download prices (Yahoo) or macro series (FRED) as import files; off unless "
    f"{ALLOW_ENV}=1.",
    no_args_is_help=True,
)

StartOption = Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")]
EndOption = Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")]


def cache_dir() -> Path:
    """Where responses are cached: the data home's cache/downloads/."""
    try:
        return DataHome.from_env().ensure().root / "cache" / "downloads"
    except DataHomeError as err:
        raise fail(str(err)) from None


def _run(download, out: Path) -> Download:
    try:
        result = download()
    except (DownloadsDisabled, DownloadFailed) as err:
        raise fail(str(err)) from None
    except ImportFailed as err:
        raise fail(
            f"The download does not pass the import checks ({out} is kept):\n{err}"
        ) from None
    for note in result.notes:
        typer.echo(note)
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    return result


@app.command("prices")
def data_download_prices(
    tickers: Annotated[str, typer.Argument(help="Comma-separated symbols, e.g. AAPL,MSFT.")],
    start: StartOption,
    end: EndOption,
    out: Annotated[Path, typer.Option(help="Prices CSV to write.")] = Path("prices.csv"),
) -> None:
    """Daily OHLCV with adjusted closes from Yahoo's chart endpoint, as a prices CSV."""
    names = [t.strip() for t in tickers.split(",") if t.strip()]
    if not names:
        raise fail("Give at least one ticker.")
    result = _run(lambda: download_prices(names, start, end, out=out, cache_dir=cache_dir()), out)
    prices = result.frame
    typer.echo(
        f"Wrote {out}: {len(prices)} rows of {prices['ticker'].nunique()} tickers, "
        f"{prices['date'].min().date()} to {prices['date'].max().date()}. "
        f"Import it with `trendlab data import NAME --prices {out}`."
    )


@app.command("macro")
def data_download_macro(
    start: StartOption,
    end: EndOption,
    series: Annotated[
        str, typer.Option(help="Comma-separated Trendlab series names (FRED ids in the docs).")
    ] = ",".join(FRED_SERIES),
    out: Annotated[Path, typer.Option(help="Macro CSV to write.")] = Path("macro.csv"),
) -> None:
    """Macro series from FRED (CPILFESL, AAA, BAA, DCOILWTICO, VIXCLS) as a macro CSV."""
    names = [s.strip() for s in series.split(",") if s.strip()]
    result = _run(lambda: download_macro(names, start, end, out=out, cache_dir=cache_dir()), out)
    typer.echo(
        f"Wrote {out}: {len(result.frame)} observations of {', '.join(names)}. Import it with "
        f"`trendlab data import NAME --prices FILE --macro {out}`."
    )
