"""Where and how a run executes: device, precision, processes, randomness.

* :func:`pick_device` and :func:`autocast` -- the device and the autocast
  context (bf16 on CUDA by default, full fp32 on the CPU); :func:`frozen`
  keeps a module's parameters out of a backward pass;
* :func:`distributed_env`, :func:`init_distributed`, :func:`world` -- torchrun's
  processes (DistributedDataParallel: nccl on GPU, gloo on CPU) and the
  collectives the trainer needs besides DDP's own gradient all-reduce:
  :func:`any_rank`, :func:`average_gradients`, :func:`broadcast_batchnorm_stats`;
* :func:`seed_everything`, :func:`rng_state`, :func:`set_rng_state` -- every
  global generator, saved into a checkpoint and restored, so a resumed run
  draws the same numbers as one that never stopped.

Nothing here knows about models or configs. Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import contextlib
import datetime
import os
import random
import re

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from vqlearn.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# ---------------------------------------------------------------------------
# Device and precision
# ---------------------------------------------------------------------------


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: this rank's GPU when CUDA is present, else the CPU. ``cuda`` without CUDA is an error."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config key `train.device` is {name!r} but CUDA is not available; use auto or cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (one of :data:`PRECISIONS`); None means full fp32.

    ``auto`` is bf16 on CUDA and fp32 on the CPU.
    """
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast(device.type, dtype)``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def frozen(module: nn.Module | None):
    """Inside the block, ``module``'s parameters record no gradient (None: nothing to freeze)."""
    if module is None:
        yield
        return
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


# ---------------------------------------------------------------------------
# Processes (torchrun)
# ---------------------------------------------------------------------------


def distributed_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment variables; ``(0, 1, 0)`` without."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the current process group; ``(0, 1)`` outside one."""
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device_name: str = "auto", timeout: float = 300.0) -> bool:
    """Join the process group torchrun describes (nccl on GPU, gloo on CPU). True if this call created it.

    ``timeout``: seconds a collective waits for the other ranks (``train.dist_timeout``) before it
    fails, instead of hanging when a rank stops answering.
    """
    _, world_size, local_rank = distributed_env()
    if world_size <= 1 or is_distributed():
        return False
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=timeout))
    return True


_PEER_FAILURE = re.compile(r"timed out|timeout|connection closed by peer|connection reset by peer|pair closure|"
                           r"broken pipe|communicator was aborted", re.IGNORECASE)


def is_peer_failure(error: BaseException) -> bool:
    """True for the errors a collective raises when another rank stopped answering or died."""
    return bool(_PEER_FAILURE.search(str(error)))


def describe_peer_failure(error: BaseException) -> str:
    """One line for a peer failure: the other rank (with two ranks), or the peer's address if the backend gives it."""
    text = str(error)
    ranks = [r for r in range(dist.get_world_size()) if r != dist.get_rank()] if is_distributed() else []
    who = f"rank {ranks[0]}" if len(ranks) == 1 else f"one of ranks {', '.join(map(str, ranks))}" if ranks else "a rank"
    if re.search(r"timed out|timeout", text, re.IGNORECASE):
        return f"{who} stopped answering: a collective operation got no reply"
    peer = re.search(r"\[([0-9a-f.:]+)\]:(\d+)", text)
    where = f" (its connection from {peer.group(1)}:{peer.group(2)} closed)" if peer else ""
    return f"{who} died{where}"


def any_rank(flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag OR-ed over all ranks, so that every rank stops, or none does."""
    if not is_distributed():
        return flags
    t = torch.tensor([float(f) for f in flags], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def average_gradients(module: nn.Module) -> None:
    """All-reduce and average ``module``'s gradients, for a module that is not wrapped in DDP."""
    if not is_distributed():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_batchnorm_stats(module: nn.Module) -> None:
    """Copy rank 0's BatchNorm running statistics to every rank, as DDP does before each forward.

    (EMA codebooks are buffers too, but they are all-reduced inside the quantizer.)
    """
    if not is_distributed():
        return
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            for buffer in layer.buffers():
                dist.broadcast(buffer, src=0)


# ---------------------------------------------------------------------------
# Randomness
# ---------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global RNG state, as tensors and plain values (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    """Lists back to tuples (``random.setstate`` wants the nested tuples it gave; a checkpoint stores lists)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
