"""Device and precision selection."""

import torch

from advconv import runtime
from advconv.runtime import Runtime, autocast_dtype


def test_auto_precision_falls_back_to_fp32_without_cpu_bf16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: False)
    assert autocast_dtype("auto", cpu) is None
    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: True)
    assert autocast_dtype("auto", cpu) is torch.bfloat16
    assert autocast_dtype("fp32", cpu) is None


def test_one_autocast_context_serves_every_batch():
    rt = Runtime(torch.device("cpu"), torch.bfloat16)
    for _ in range(2):  # entered again and again, as the loops do
        with rt.autocast:
            assert torch.is_autocast_enabled("cpu")
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.bfloat16
        assert not torch.is_autocast_enabled("cpu")
    with Runtime().autocast:
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.float32


def test_cuda_rng_state_travels_with_the_checkpoint(monkeypatch):
    saved = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: ["gpu0 state"])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", saved.append)
    state = runtime.rng_state()
    assert state["cuda"] == ["gpu0 state"]
    runtime.restore_rng(state)
    assert saved == [["gpu0 state"]]
