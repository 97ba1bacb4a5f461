"""The memory a process can still get: the kernel's MemAvailable, or a container's cgroup limit
less its usage when that is smaller."""

from __future__ import annotations

from pathlib import Path

import pytest

import core.memory as memory


def _machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, available_kb: int | None) -> Path:
    meminfo = tmp_path / "meminfo"
    lines = ["MemTotal:       32000000 kB"]
    if available_kb is not None:
        lines.append(f"MemAvailable:   {available_kb} kB")
    meminfo.write_text("\n".join(lines) + "\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    monkeypatch.setattr(memory, "MEMINFO", meminfo)
    monkeypatch.setattr(memory, "CGROUP", cgroup)
    return cgroup


def test_the_kernels_available_memory_without_a_container_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cgroup = _machine(tmp_path, monkeypatch, 8_000_000)
    assert memory.available_memory() == 8_000_000 * 1024
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("1000\n")
    assert memory.available_memory() == 8_000_000 * 1024


def test_a_container_limit_below_the_machines_memory_is_what_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cgroup = _machine(tmp_path, monkeypatch, 8_000_000)
    (cgroup / "memory.max").write_text(f"{4 * 1024**3}\n")
    (cgroup / "memory.current").write_text(f"{1024**3}\n")
    assert memory.available_memory() == 3 * 1024**3
    (cgroup / "memory.max").unlink()
    (cgroup / "memory").mkdir()
    (cgroup / "memory" / "memory.limit_in_bytes").write_text(f"{2 * 1024**3}\n")
    (cgroup / "memory" / "memory.usage_in_bytes").write_text("0\n")
    assert memory.available_memory() == 2 * 1024**3, "cgroup v1"


def test_unknown_where_nothing_can_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(tmp_path, monkeypatch, None)
    assert memory.available_memory() is None
