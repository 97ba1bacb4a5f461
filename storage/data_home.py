"""Where Trendlab keeps what it writes: one data home, overridable by environment variables.

``$TRENDLAB_HOME`` (default ``./.trendlab``) holds the DuckDB file, checkpoints, uploads, job
files and logs. ``$TRENDLAB_DB_URL`` replaces the database URL: another DuckDB file, or a
PostgreSQL database (``postgresql+psycopg://user:password@host/db``) that a team's servers,
CLIs and workers share; they then share this folder too (a shared volume), because feature
tables, checkpoints and job files stay files here.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from storage.uploads import remove_stale_uploads

HOME_ENV = "TRENDLAB_HOME"
DB_URL_ENV = "TRENDLAB_DB_URL"
DEFAULT_HOME = ".trendlab"
DB_FILENAME = "trendlab.duckdb"
SWEEPS_FILENAME = "sweeps.sqlite3"
SERVER_FILENAME = "server.json"


class DataHomeError(RuntimeError):
    """The data home cannot be created or written."""


@dataclass(frozen=True)
class DataHome:
    """The data home and its fixed layout."""

    root: Path

    @classmethod
    def from_env(cls) -> DataHome:
        return cls(Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve())

    def relative(self, path: Path | str) -> str:
        """``path`` as a message shows it: relative to the data home (a server's folders are
        none of its visitors' business), or its file name alone when outside it."""
        path = Path(path)
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.name

    def without_root(self, text: str) -> str:
        """``text`` (an error message) with the data home's absolute paths written relative
        to it, and the home itself as "the data home"."""
        return text.replace(f"{self.root}{os.sep}", "").replace(str(self.root), "the data home")

    @property
    def database_path(self) -> Path:
        return self.root / DB_FILENAME

    @property
    def database_url(self) -> str:
        return os.environ.get(DB_URL_ENV) or f"duckdb:///{self.database_path}"

    @property
    def shared_database(self) -> bool:
        """True when the database is a server (PostgreSQL) that many processes write."""
        from storage.db import is_duckdb

        return not is_duckdb(self.database_url)

    @property
    def sweeps_url(self) -> str:
        """Where Optuna keeps the sweeps' studies: the same PostgreSQL database, or a SQLite
        file beside the DuckDB file (Optuna's RDB storage does not run on DuckDB)."""
        if self.shared_database:
            return self.database_url
        return f"sqlite:///{self.root / SWEEPS_FILENAME}"

    @property
    def features(self) -> Path:
        """Feature tables as Parquet files, one per dataset (and part), when the metadata is in
        PostgreSQL; with DuckDB they are tables inside the database file."""
        return self.root / "features"

    @property
    def server_file(self) -> Path:
        """Written by `trendlab serve`: where the running server answers (the CLI asks it
        when the DuckDB file is held)."""
        return self.root / SERVER_FILENAME

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def baselines(self) -> Path:
        """Baselines' predictions fitted once per dataset version and split
        (``core.market.predictions.BaselineCache``)."""
        return self.root / "baselines"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def folders(self) -> tuple[Path, ...]:
        return (self.root, self.checkpoints, self.uploads, self.jobs, self.logs)

    def ensure(self) -> DataHome:
        """Create the folders, or say in one sentence why that is impossible."""
        try:
            for folder in self.folders:
                folder.mkdir(parents=True, exist_ok=True)
            # Unique per call: threads of one process and processes sharing the home probe at once.
            probe = self.root / f".write-test-{os.getpid()}-{uuid.uuid4().hex}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise DataHomeError(
                f"Cannot write to the data home {self.root} ({err.strerror or err}). "
                f"Set {HOME_ENV} to a writable folder."
            ) from None
        return self


_checked: set[Path] = set()
_checked_lock = threading.Lock()


def checked_home() -> DataHome:
    """The data home from the environment, created and probed once per process (the first call,
    at start-up for a server); later calls, one per request, only look that it is still there
    and write nothing. A home removed since is made again. The check also removes the uploads
    that killed processes left mid-import (``storage.uploads.remove_stale_uploads``)."""
    home = DataHome.from_env()
    if home.root in _checked and all(folder.is_dir() for folder in home.folders):
        return home
    with _checked_lock:
        home.ensure()
        remove_stale_uploads(home)
        _checked.add(home.root)
    return home
