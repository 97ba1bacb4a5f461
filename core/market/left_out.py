"""What a price import left out, by file: rows by reason, with their first lines, and whole
tickers with their row counts; said one sentence per file and counted for the recipe."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

LISTED_LINES = 3
"""Lines named per file and reason in what an import left out; the rest are counted."""


@dataclass(frozen=True)
class LeftOutTicker:
    """A ticker an import left out: the file(s) it came from, its rows and why."""

    files: str
    ticker: str
    rows: int
    reason: str


@dataclass
class LeftOut:
    """What a price import left out, by file: rows by reason (with the first
    ``LISTED_LINES`` lines of each) and whole tickers with their row counts."""

    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    lines: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    tickers: list[LeftOutTicker] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows or self.tickers)

    @property
    def row_count(self) -> int:
        return sum(sum(reasons.values()) for reasons in self.rows.values())

    def add_rows(self, file: str, reason: str, lines: Sequence[int]) -> None:
        """Rows of ``file`` left out for ``reason``, at ``lines`` (CSV lines, Parquet rows)."""
        counts = self.rows.setdefault(file, {})
        counts[reason] = counts.get(reason, 0) + len(lines)
        listed = self.lines.setdefault(file, {}).setdefault(reason, [])
        listed += [int(line) for line in lines[: max(LISTED_LINES - len(listed), 0)]]

    def add_ticker(self, files: str, ticker: str, rows: int, reason: str) -> None:
        self.tickers.append(LeftOutTicker(files, ticker, rows, reason))

    def by_file(self) -> dict[str, str]:
        """One sentence per file (sorted by name) saying what was left out of it."""
        parts: dict[str, list[str]] = {}
        for file, counts in self.rows.items():
            lines = self.lines[file]
            left = _plural(sum(counts.values()), "row") + " left out"
            if len(counts) == 1:
                [(reason, count)] = counts.items()
                text = f"{left}, {reason} ({_where(file, lines[reason], count)})"
            else:
                text = f"{left}: " + ", ".join(
                    f"{count} {reason} ({_where(file, lines[reason], count)})"
                    for reason, count in counts.items()
                )
            parts.setdefault(file, []).append(text)
        for left in self.tickers:
            parts.setdefault(left.files, []).append(
                f"ticker {left.ticker} left out: {_plural(left.rows, 'row')}; {left.reason}"
            )
        return {file: "; ".join(parts[file]) for file in sorted(parts)}

    def describe(self) -> list[str]:
        """``by_file`` as lines ``FILE: what was left out``."""
        return [f"{file}: {text}" for file, text in self.by_file().items()]

    def to_dict(self) -> dict[str, object]:
        """Counts for a recipe: rows per file and reason, tickers with rows and files."""
        return {
            "rows": {file: dict(counts) for file, counts in self.rows.items()},
            "tickers": {
                left.ticker: {"rows": left.rows, "files": left.files} for left in self.tickers
            },
        }


def _where(file: str, lines: list[int], count: int) -> str:
    """``line 9`` / ``lines 9, 15, ...`` (``row`` for a Parquet file)."""
    word = "row" if Path(file).suffix.lower() == ".parquet" else "line"
    listed = ", ".join(map(str, lines)) + (", ..." if count > len(lines) else "")
    return f"{word}s {listed}" if count > 1 else f"{word} {listed}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
