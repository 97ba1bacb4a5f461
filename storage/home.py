"""Where Trendlab keeps what it writes: one data home, overridable by environment variables.

``$TRENDLAB_HOME`` (default ``./.trendlab``) holds the DuckDB file, checkpoints, uploads, job
files and logs. ``$TRENDLAB_DB_URL`` replaces the database URL (any SQLAlchemy URL).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "TRENDLAB_HOME"
DB_URL_ENV = "TRENDLAB_DB_URL"
DEFAULT_HOME = ".trendlab"
DB_FILENAME = "trendlab.duckdb"


class DataHomeError(RuntimeError):
    """The data home cannot be created or written."""


@dataclass(frozen=True)
class DataHome:
    """The data home and its fixed layout."""

    root: Path

    @classmethod
    def from_env(cls) -> DataHome:
        return cls(Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve())

    @property
    def database_path(self) -> Path:
        return self.root / DB_FILENAME

    @property
    def database_url(self) -> str:
        return os.environ.get(DB_URL_ENV) or f"duckdb:///{self.database_path}"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def ensure(self) -> DataHome:
        """Create the folders, or say in one sentence why that is impossible."""
        try:
            for folder in (self.root, self.checkpoints, self.uploads, self.jobs, self.logs):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise DataHomeError(
                f"Cannot write to the data home {self.root} ({err.strerror or err}). "
                f"Set {HOME_ENV} to a writable folder."
            ) from None
        return self
