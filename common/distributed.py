"""torchrun support: which process this is, and a barrier that works with or without it.

The process group carries only barriers and small messages, so it always uses gloo (CPU):
ranks never need a GPU of their own to coordinate, and several ranks may share one GPU.
Which GPU a rank computes on is the device's business (``models.segment_encoder.resolve_device``).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch.distributed as dist

# Ranks wait for each other at the end of a split; extraction of a large shard takes hours.
BARRIER_TIMEOUT = datetime.timedelta(hours=24)


@dataclass(frozen=True)
class Process:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def gather(self, value) -> list:
        """Every rank's ``value`` (small picklable objects), in rank order, on every rank."""
        if self.world_size == 1:
            return [value]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def share(self, value):
        """Rank 0's ``value`` on every rank (a small picklable object)."""
        if self.world_size == 1:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_process() -> Process:
    """Join the torchrun process group when launched by torchrun, else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Process()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=BARRIER_TIMEOUT)
    return Process(dist.get_rank(), dist.get_world_size(), local_rank)


def shutdown(process: Process) -> None:
    if process.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
