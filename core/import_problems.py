"""Problems found in users' files, and the error that reports them.

A ``Problem`` names the file, the line (CSV, the header is line 1) or row (Parquet) and the
column; ``ImportFailed`` carries the first problems of each file and the count of all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_LISTED_PROBLEMS = 20
"""Problems written out in an ``ImportFailed`` message; the rest are counted."""


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    row: int | None = None  # 1-based data row
    column: str | None = None
    csv: bool = True

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"line {self.row + 1}" if self.csv else f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}"


class ImportFailed(ValueError):
    """One or more problems in the imported files; nothing was built or stored.

    ``problems`` are the described ones; ``total`` counts every problem found, described or not.
    """

    def __init__(self, problems: Sequence[Problem], total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = max(total or 0, len(self.problems))
        lines = [str(p) for p in self.problems[:MAX_LISTED_PROBLEMS]]
        if self.total > len(lines):
            lines.append(f"... and {self.total - len(lines)} more problems")
        super().__init__("The import failed; nothing was stored.\n" + "\n".join(lines))
