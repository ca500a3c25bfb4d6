"""Which slice of an infinite or finite stream this process and dataloader worker own.

Every (rank, worker) pair gets a disjoint arithmetic progression of sample indices, so streams never
duplicate samples across processes and a resumed run can start at a known index.
"""

from __future__ import annotations

import os

import torch


def distributed_rank_and_size() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    # Launchers (torchrun, accelerate) set these before the process group exists.
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard_info() -> tuple[int, int]:
    """(shard index, number of shards) over all ranks x dataloader workers."""
    rank, world = distributed_rank_and_size()
    worker = torch.utils.data.get_worker_info()
    worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
    return rank * num_workers + worker_id, world * num_workers
