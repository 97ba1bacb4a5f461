"""core/devices.py: the device is resolved once, at the entry point; nothing below picks one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from core.devices import (
    DeviceError,
    autocast_dtype,
    bf16_is_native,
    resolve_device,
    run_threads,
    torch_threads,
)

ROOT = Path(__file__).resolve().parents[2]
PICKS_A_DEVICE = re.compile(r"\.cuda\(|torch\.cuda\.|[\"']cuda[\"']")


def test_auto_is_cuda_when_present_and_the_cpu_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("CUDA:1") == torch.device("cuda:1")


def test_cuda_without_a_gpu_and_unknown_names_are_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="Unknown device 'tpu'"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match="has 1 CUDA GPU"):
        resolve_device("cuda:3")


def device_pickers(root: Path) -> list[str]:
    """Modules of core/ other than core/devices.py whose code names CUDA: a model file or the
    trainer that moves itself or picks a device."""
    found = []
    for path in sorted((root / "core").rglob("*.py")):
        if path.name == "devices.py" and path.parent.name == "core":
            continue
        if PICKS_A_DEVICE.search(path.read_text()):
            found.append(str(path.relative_to(root)))
    return found


def test_no_model_file_and_not_the_trainer_picks_a_device() -> None:
    assert device_pickers(ROOT) == []


def test_the_check_finds_a_trainer_that_picks_cuda_itself(tmp_path: Path) -> None:
    (tmp_path / "core" / "market" / "models").mkdir(parents=True)
    (tmp_path / "core" / "trainer.py").write_text("device = 'cuda'\n")
    (tmp_path / "core" / "market" / "models" / "tower.py").write_text("model.cuda()\n")
    (tmp_path / "core" / "plots.py").write_text("x = 1\n")
    assert device_pickers(tmp_path) == ["core/market/models/tower.py", "core/trainer.py"]


def test_torch_threads_holds_the_count_inside_the_block_and_restores_it_after() -> None:
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with torch_threads(target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with torch_threads(0):  # 0 leaves torch's own setting
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(target):
        raise RuntimeError("a failing fit")
    assert torch.get_num_threads() == before


def test_run_threads_limits_torch_and_the_blas_and_openmp_pools() -> None:
    """A run's threads hold for torch, numpy's BLAS and any OpenMP pool threadpoolctl finds
    inside the block, and each is back to its own setting after it."""
    import numpy as np  # noqa: F401 - loads the BLAS whose pool is checked
    from threadpoolctl import threadpool_info

    before = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    assert before, "numpy's BLAS is loaded"
    torch_before = torch.get_num_threads()
    with run_threads(1):
        inside = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
        assert torch.get_num_threads() == 1
    after = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    assert set(inside.values()) == {1}
    assert after == before and torch.get_num_threads() == torch_before
    with run_threads(0):  # 0 leaves every pool as it is
        assert {p["filepath"]: p["num_threads"] for p in threadpool_info()} == before


def test_precision_names_the_autocast_dtype_and_refuses_unknown_ones() -> None:
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(DeviceError, match="fp16"):
        autocast_dtype("fp16", cpu)
    with pytest.raises(DeviceError, match="meta"):
        autocast_dtype("bf16", torch.device("meta"))
    assert isinstance(bf16_is_native(cpu), bool)
    assert bf16_is_native(torch.device("meta")) is False
