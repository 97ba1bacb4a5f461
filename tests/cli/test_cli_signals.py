"""A CLI training run stopped with SIGTERM (or Ctrl-C) is recorded as cancelled, never left
'running' (issue 23, item 13)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRENDLAB = [sys.executable, "-c", "from cli import main; main()"]


def _training(tmp_path: Path) -> tuple[dict[str, str], subprocess.Popen]:
    """A data home with a small recommender dataset, and a long CLI training on it."""
    env = {**os.environ, "TRENDLAB_HOME": str(tmp_path / "home"), "TRENDLAB_JOB_RUNNER": "0"}
    env.pop("TRENDLAB_DB_URL", None)
    made = [*TRENDLAB, "recsys", "synthetic", "rs", "--users", "60", "--interactions", "900"]
    subprocess.run(made, env=env, check=True, capture_output=True, timeout=120)
    # 500 gradient epochs without early stopping (about a minute here): the default
    # objective's closed-form solve and early stop end in a second or two on a fast machine,
    # before the test's signal lands
    settings = tmp_path / "long.yaml"
    settings.write_text("objective: masked_softmax\nearly_stopping_patience: 500\n")
    command = ["recsys", "train", "--dataset", "rs", "--epochs", "500", "--config", str(settings)]
    train = subprocess.Popen(
        [*TRENDLAB, *command],
        env=env,
        # a test run started in the background ignores SIGINT, and so would the command:
        # give it the default disposition, as a terminal does, so Python turns it into Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return env, train


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_training_run_stopped_by_a_signal_is_cancelled(tmp_path: Path, stop: int) -> None:
    env, train = _training(tmp_path)
    deadline = time.monotonic() + 120
    for line in train.stderr:  # the stage line printed once epochs begin
        if "training on" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)
    train.send_signal(stop)
    train.communicate(timeout=60)
    assert train.returncode not in (0, -stop), train.returncode  # stopped, not killed
    listed = subprocess.run(
        [*TRENDLAB, "runs", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    runs = json.loads(listed.stdout)
    assert [run["status"] for run in runs] == ["cancelled"], listed.stdout


@pytest.mark.slow
def test_a_run_whose_process_was_killed_is_marked_interrupted_by_the_next_command(
    tmp_path: Path,
) -> None:
    """SIGKILL leaves no chance to record anything: the next command finds the run
    'running' with a process that is gone, and marks it interrupted."""
    env, train = _training(tmp_path)
    for line in train.stderr:
        if "training on" in line:
            break
    train.kill()
    train.communicate(timeout=60)
    listed = subprocess.run(
        [*TRENDLAB, "runs", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    runs = json.loads(listed.stdout)
    assert [run["status"] for run in runs] == ["interrupted"], listed.stdout
