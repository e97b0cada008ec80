"""Distributed data parallel, kept small.

``torchrun --standalone --nproc_per_node=N -m interp4d_lite.train distill ...`` sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; :func:`init_distributed` then joins the process
group -- NCCL on CUDA, gloo on CPU -- and pins each process to its GPU. Without those
variables everything runs as a single process (rank 0 of 1) and no process group is made.
Only rank 0 writes checkpoints, histories and progress bars (:func:`is_main`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..device import get_device

__all__ = [
    "DistEnv",
    "init_distributed",
    "cleanup_distributed",
    "is_main",
    "barrier",
    "all_reduce_mean",
    "weight_hash",
    "gather_weight_hashes",
]


@dataclass
class DistEnv:
    """Where this process runs: rank, world size, local rank, device and backend
    (``world_size == 1``: a single process, no process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # "nccl" | "gloo" | None (single process)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | torch.device = "auto") -> DistEnv:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(device=get_device(device))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = get_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=dev, backend=backend)


def cleanup_distributed(wait: bool = True) -> None:
    """Leave the process group: free unreachable objects that may still hold it (DDP
    wrappers live in reference cycles), wait for every rank (``wait``, after a normal
    end only: a rank that failed must not block on peers still training), then destroy
    it, so that no rank tears down its connections while another still uses them."""
    if dist.is_available() and dist.is_initialized():
        import gc

        gc.collect()
        try:
            if wait:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def is_main() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of floats over all ranks (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= dist.get_world_size()
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def weight_hash(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer, bit-exact (same weights <=> same hash)."""
    net = model.module if hasattr(model, "module") else model
    h = hashlib.sha256()
    for name, v in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(
            v.detach().cpu().contiguous().numpy().tobytes()
            if v.dtype != torch.bfloat16
            else v.float().cpu().numpy().tobytes()
        )
    return h.hexdigest()


def gather_weight_hashes(model: torch.nn.Module) -> list[str]:
    """Weight hash of every rank, in rank order (one entry in a single process).
    DDP keeps replicas identical; this checks it after training."""
    mine = weight_hash(model)
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, mine)
    return [str(v) for v in out]
