"""Uploaded files staged in the data home's uploads folder while they are imported.

Each import stages its files in a folder of its own, named ``import-<host>-<pid>-<token>``
after the process that writes it. ``staged_uploads`` removes the folder when the import ends,
however it ends; a process killed mid-import (SIGKILL, lost power) runs no clean-up, so
``remove_stale_uploads``, called when a process first checks the data home, removes the
folders such processes left.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol


class DataHome(Protocol):
    """What staging needs of a data home (``storage.data_home.DataHome``): its uploads
    folder. A protocol, so the data home can clean its uploads without an import cycle."""

    @property
    def uploads(self) -> Path: ...


STAGING_PATTERN = re.compile(r"import-(?P<host>[A-Za-z0-9._]+)-(?P<pid>[0-9]{1,10})-[0-9a-f]{32}")
"""The name of a staging folder: host, process id and a random token."""


def host_name() -> str:
    """This machine's name as a staging folder carries it (dashes would split it)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "_"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def staged_uploads(
    home: DataHome, files: Mapping[str, Sequence[tuple[str, bytes]]]
) -> Iterator[Path]:
    """A fresh folder in the home's uploads folder holding each role's files (``role/name``),
    removed on leaving, whether the import returned or raised, and if writing a file failed."""
    folder = home.uploads / f"import-{host_name()}-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        folder.mkdir(parents=True)
        for role, named in files.items():
            (folder / role).mkdir()
            for name, content in named:
                (folder / role / Path(name).name).write_bytes(content)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_uploads(home: DataHome) -> list[Path]:
    """Remove the staging folders that a process of this machine left when it was killed;
    returns those removed.

    The rule: a folder is removed only when its name matches ``STAGING_PATTERN``, names this
    machine, and names a process that no longer runs. A running process's folder (this one's
    included) is kept, and so is one whose process id a new process has taken since (it goes
    once that process ends). Folders of other machines sharing the home are kept: each
    machine's own start-up removes them. Anything else in the folder is not touched. Never
    raises: a folder that cannot be removed is left for the next start-up.
    """
    removed = []
    try:
        entries = list(home.uploads.iterdir())
    except OSError:
        return removed
    host = host_name()
    for entry in entries:
        match = STAGING_PATTERN.fullmatch(entry.name)
        if match is None or match["host"] != host or _alive(int(match["pid"])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed
