"""Data-parallel training over several processes (``torchrun``), kept explicit and small.

Course: :ref:`scaling-torchrun`. Each process (rank) holds a full copy of the method, draws its own
shard of every batch (``DeviceLoader(rank=, world_size=)``), and after ``backward`` the
gradients are averaged across ranks (``average_gradients``), which is what
``DistributedDataParallel`` does, without its bucketing and overlap. Contrastive losses need
the negatives of *all* ranks: methods call ``gather_with_grad`` on their embeddings before the
loss, so every rank computes the loss of the global batch.

Run a script on 2 GPUs of one machine with ``torchrun --nproc_per_node 2 script.py``; it calls
``init_from_environment()`` first. Nothing here is needed, or does anything, in one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor, nn


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world_size() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    return (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)


def init_from_environment(backend: str | None = None) -> tuple[int, int]:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT) and return (rank, world size); (0, 1) when not under torchrun.

    ``backend`` defaults to NCCL with CUDA and gloo on CPU. Each process uses the GPU of its
    LOCAL_RANK."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return rank_and_world_size()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward returns to each rank the gradient of its own rows, summed
    over the losses of all ranks (every rank's loss depends on every rank's embeddings)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) of every rank along dim 0, rank order, keeping the gradient
    path to each rank's own rows. Returns ``x`` unchanged in a single process.

    Used before a contrastive loss so that its negatives are the global batch. With every rank
    computing the same global loss and gradients averaged across ranks, the parameter
    gradients equal those of one process on the whole batch (tested in ``tests/test_distributed.py``).
    """
    return _GatherWithGrad.apply(x) if is_distributed() else x


@torch.no_grad()
def mean_across_ranks(x: Tensor) -> Tensor:
    """Return the mean of ``x`` over ranks (``x`` itself in a single process): for running
    statistics that must agree on every rank, such as DINO's center."""
    if not is_distributed():
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def average_gradients(module: nn.Module) -> None:
    """Average the gradients of ``module``'s parameters across ranks (one flat all-reduce)."""
    if not is_distributed():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def prepare_for_distributed(method: nn.Module) -> nn.Module:
    """Make every rank start from rank 0's weights and, on GPUs, convert BatchNorm layers to
    SyncBatchNorm (statistics over the global batch, as SimCLR does on TPUs).

    PyTorch's SyncBatchNorm runs on GPUs only; on CPU (gloo) each rank normalises with its own
    shard's statistics, which changes results slightly from the single-process run."""
    if not is_distributed():
        return method
    if next(method.parameters()).is_cuda:
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    for tensor in list(method.parameters()) + list(method.buffers()):
        dist.broadcast(tensor.data, src=0)
    return method
