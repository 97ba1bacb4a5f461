"""How much memory this machine (or the container it runs in) can still give a process, for
the checks that refuse work that cannot fit before it starts."""

from __future__ import annotations

from pathlib import Path

MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")


def available_memory() -> int | None:
    """Bytes a new allocation can still get: the kernel's MemAvailable, or less when a cgroup
    (a container's memory limit) leaves less; None where neither can be read (not Linux)."""
    known = [room for room in (_meminfo_available(), _cgroup_room()) if room is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """The cgroup's limit less its usage: cgroup v2 (memory.max), else v1."""
    for limit, usage in (
        (CGROUP / "memory.max", CGROUP / "memory.current"),
        (CGROUP / "memory" / "memory.limit_in_bytes", CGROUP / "memory" / "memory.usage_in_bytes"),
    ):
        try:
            cap = limit.read_text().strip()
            if cap == "max" or int(cap) >= 1 << 60:  # no limit (v1 writes a huge number)
                return None
            return max(int(cap) - int(usage.read_text().strip()), 0)
        except (OSError, ValueError):
            continue
    return None
