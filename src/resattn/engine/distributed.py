"""torchrun support: process-group setup and the few collectives the engine needs. Everything
here is a no-op in a single process, so the engine code reads the same in both cases."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment: nccl on CUDA, gloo on CPU."""
    if not launched_by_torchrun():
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                    int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return info


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In place across ranks (sum or max); returns the tensor."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (on every rank)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def sync_buffers(model: nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics). DDP broadcasts them at
    the start of each training forward, so after the last step each rank holds the statistics
    of its own last batch: evaluation and checkpoints must all see the same ones."""
    if is_distributed():
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


@torch.no_grad()
def weights_in_sync(model: nn.Module) -> bool:
    """True when every rank holds bit-identical parameters and buffers."""
    if not is_distributed():
        return True
    digest = torch.stack([t.detach().double().sum() for t in model.state_dict().values()
                          if t.is_floating_point()]).cpu()
    mine = torch.frombuffer(bytearray(digest.numpy().tobytes()), dtype=torch.uint8)
    return all(torch.equal(mine, other) for other in gather_objects(mine))


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
