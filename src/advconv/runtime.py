"""Where and how a run computes: the device, the precision context, seeds, the process group.

``Runtime`` is made once per run and handed to the loops: they enter ``rt.autocast`` (one
context object, built once, as nanoGPT's ``ctx``) instead of rebuilding it every batch.
"""

from __future__ import annotations

import copy
import gc
import os
import random
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 math (AVX512-BF16 or AMX); elsewhere bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    """``auto``: a CUDA GPU, else Apple's ``mps``, else the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: fp32). ``auto``: bf16 where the hardware does it natively (GPUs
    of compute capability 8.0 and up, CPUs with AVX512-BF16 or AMX); fp16, with a gradient
    scaler, on older GPUs (a Colab T4); fp32 on Apple's mps and on other CPUs."""
    if precision != "auto":
        return PRECISIONS[precision]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def grad_scaler(rt: "Runtime") -> torch.amp.GradScaler:
    """Loss scaling for fp16 (its small range underflows gradients); a pass-through otherwise."""
    return torch.amp.GradScaler(rt.device.type, enabled=rt.dtype is torch.float16)


def set_seed(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """Every global RNG a run draws from (CUDA's too, once in use), as tensors and plain types
    only, so a checkpoint holding it loads with ``torch.load(weights_only=True)``."""
    numpy = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": numpy["state"]["key"].tolist(), "pos": numpy["state"]["pos"],
                  "has_gauss": numpy["has_gauss"], "gauss": numpy["gauss"]},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", np.array(n["key"], dtype=np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Runtime:
    """The device, the autocast dtype (None: fp32) and this process's place in a torchrun group."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype | None = None
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        self.autocast: ContextManager = (torch.autocast(self.device.type, dtype=self.dtype)
                                         if self.dtype is not None else nullcontext())

    @classmethod
    def start(cls, device: str, precision: str) -> "Runtime":
        """Resolve ``device``/``precision`` and, when launched by torchrun (WORLD_SIZE > 1), join
        its process group (gloo on CPU, nccl on GPU), one GPU per local rank."""
        dev = resolve_device(device)
        rank, world = 0, int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            if not dist.is_initialized():
                dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
            rank, world = dist.get_rank(), dist.get_world_size()
            if dev.type == "cuda":
                dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
                torch.cuda.set_device(dev)
        return cls(dev, autocast_dtype(precision, dev), rank, world)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (e.g. "the target is reached", or the error that
        stopped rank 0, so that no rank is left waiting in a collective)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on rank 0 only, its result (or the error it raised) handed to every rank,
        so that no rank is left waiting in a collective when rank 0 fails."""
        result, failure = None, None
        if self.is_main:
            try:
                result = work(*args)
            except Exception as exc:  # raised below, on every rank
                failure = exc
        result, failure = self.share((result, failure))
        if failure is not None:
            raise failure
        return result

    def loss_everywhere(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss summed over ranks: NaN or infinite on every rank as soon as it is on one,
        so all ranks stop at the same batch instead of some waiting in the gradient all-reduce."""
        if not self.distributed:
            return loss.detach()
        total = loss.detach().clone()
        dist.all_reduce(total)
        return total

    def finish(self, model: nn.Module) -> None:
        """Leave the process group with every rank holding rank 0's model: parameters stay equal
        through DDP's all-reduce, but BN running statistics are per rank, so rank 0's (the ones
        evaluated and saved) are handed to all. The DDP wrapper must be gone before this."""
        if not self.distributed:
            return
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
        dist.barrier()
        gc.collect()  # drop the DDP reducer before its process group, or gloo can abort at exit
        dist.destroy_process_group()


def channels_last_grads_right(conv: nn.Conv2d, input_shape: tuple[int, ...], rt: Runtime) -> bool:
    """Whether ``conv``'s weight gradient comes out in channels_last as in NCHW, under the run's
    device and precision, for one input of ``input_shape`` (C, H, W). Some torch builds get a
    dilated depthwise conv's wrong in channels_last under CPU bf16 autocast on large maps
    (measured in the project's lab); trying it costs milliseconds and keeps
    channels_last wherever, and whenever, torch gets it right."""
    x = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0)).to(rt.device)
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last):
        probe = copy.deepcopy(conv).to(rt.device, memory_format=layout).requires_grad_()
        with rt.autocast:
            out = probe(x.contiguous(memory_format=layout))
        out.float().square().sum().backward()
        grads.append(probe.weight.grad.float())
    nchw, channels_last = grads
    return bool((channels_last - nchw).abs().max() <= 0.1 * nchw.abs().max())  # bf16 rounding: ~0.005
