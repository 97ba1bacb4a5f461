"""Training jobs on a Ray cluster: each job is one Ray task that runs the worker's ``main``.

Imported by the job manager only when ``TRENDLAB_RAY_ADDRESS`` is set, so without it nothing
of Ray is loaded. The choice is Ray *tasks*, not the Ray Jobs API: a task is one function call
with a result the manager can wait on without blocking (``ray.wait(timeout=0)``), cancel
(``ray.cancel(force=True)`` kills its worker process) and see fail (a killed worker raises
``WorkerCrashedError`` from its result), with no dashboard or job server to run. The server
that submitted the tasks owns them: if it dies, Ray ends them, and the next server marks the
jobs interrupted (resumable from last.pt), as it does for local workers.

The task and the manager talk through the job folder exactly as a local worker does
(events.jsonl, ``cancel``, ``prune``, checkpoints), so every Ray node must see the data home
at the same path (a shared volume; see docs/deploy.md). Addresses:

- ``local``: start a Ray instance inside this process (``TRENDLAB_RAY_CPUS`` CPUs, default
  all), or use the one already started with ``ray.init``;
- ``auto`` or ``ray://host:10001`` / ``host:6379``: connect to that cluster.

``TRENDLAB_RAY_CPUS_PER_JOB`` (default 1) is how many CPUs each job reserves; a training
whose config sets ``threads: 0`` then uses that many torch threads (the default, 1, uses one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError, TaskCancelledError, WorkerCrashedError

CPUS_ENV = "TRENDLAB_RAY_CPUS"
CPUS_PER_JOB_ENV = "TRENDLAB_RAY_CPUS_PER_JOB"


def _run_job(folder: str) -> int:
    """The worker's main, inside a Ray worker process."""
    from services.jobs.worker import main

    return main(Path(folder))


class RayTask:
    """One submitted job: its result reference and, once it ended, how."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref
        self.error: str | None = None

    def exit_code(self) -> int | None:
        """None while it runs; the worker's return code; 1 when Ray reports a failure (the
        worker process died, the node was lost), -9 when it was cancelled by force."""
        ready, _ = ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        try:
            return int(ray.get(self.ref))
        except TaskCancelledError:
            self.error = "the task was cancelled"
            return -9
        except WorkerCrashedError as error:
            self.error = f"its Ray worker died ({_first_line(error)})"
            return 1
        except RayError as error:
            self.error = f"{type(error).__name__}: {_first_line(error)}"
            return 1

    def kill(self) -> None:
        ray.cancel(self.ref, force=True)

    def reason(self, code: int) -> str:
        return f"Ray reporting that {self.error}" if self.error else f"code {code} on Ray"


class RayRunner:
    """Submits job folders to a Ray cluster as tasks."""

    def __init__(self, address: str) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reporting home
        if not ray.is_initialized():
            if address == "local":
                cpus = os.environ.get(CPUS_ENV)
                ray.init(
                    num_cpus=int(cpus) if cpus else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    _node_ip_address="127.0.0.1",
                )
            else:
                ray.init(address=address, log_to_driver=False)
        cpus_per_job = float(os.environ.get(CPUS_PER_JOB_ENV, "1"))
        # max_retries=0: a job whose worker died is failed and reported, never run twice.
        self.remote = ray.remote(num_cpus=cpus_per_job, max_retries=0)(_run_job)

    def launch(self, folder: Path) -> RayTask:
        return RayTask(self.remote.options(name=f"trendlab-{folder.name}").remote(str(folder)))


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(error).__name__
