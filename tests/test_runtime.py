"""Device and precision selection."""

import pytest
import torch
from torch import nn

from advconv import runtime
from advconv.runtime import Runtime, autocast_dtype, channels_last_grads_right


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


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                  ((9, 0), torch.bfloat16), ((6, 1), torch.float16)])
def test_auto_precision_on_gpus_by_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert autocast_dtype("auto", torch.device("cuda")) is expected


def test_explicit_precisions_and_mps(monkeypatch):
    assert autocast_dtype("fp16", torch.device("cpu")) is torch.float16
    assert autocast_dtype("bf16", torch.device("cuda")) is torch.bfloat16
    assert autocast_dtype("auto", torch.device("mps")) is None  # fp32 on Apple GPUs
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.resolve_device("auto") == torch.device("cpu")


def test_fp16_scales_the_loss_and_others_do_not():
    assert runtime.grad_scaler(Runtime(torch.device("cpu"), torch.float16)).is_enabled()
    assert not runtime.grad_scaler(Runtime(torch.device("cpu"), torch.bfloat16)).is_enabled()
    assert not runtime.grad_scaler(Runtime()).is_enabled()


class _WrongInChannelsLast(nn.Conv2d):
    """A conv whose channels_last path computes something else, as a broken kernel does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        return self._conv_forward(x, self.weight * (2 if channels_last else 1), self.bias)


@pytest.mark.parametrize("conv_class, right", [(nn.Conv2d, True), (_WrongInChannelsLast, False)])
@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_a_conv_is_tried_in_both_layouts_at_its_own_shape(conv_class, right, dtype):
    conv = conv_class(8, 8, 3, padding=1, groups=8, bias=False).requires_grad_(False)  # a frozen one too
    assert channels_last_grads_right(conv, (8, 12, 12), Runtime(torch.device("cpu"), dtype)) is right
    assert conv.weight.grad is None  # tried on a copy
