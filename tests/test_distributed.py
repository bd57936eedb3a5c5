"""Two CPU processes (gloo) give the NT-Xent loss and gradients of one process on the global batch.

The model has no BatchNorm: PyTorch's SyncBatchNorm (which makes BN statistics global) runs on
GPUs only, and with per-rank statistics the two runs would legitimately differ."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from sslcourse.distributed import average_gradients, gather_with_grad, prepare_for_distributed
from sslcourse.losses import nt_xent

GLOBAL_BATCH, DIM = 8, 6


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(DIM, 16), nn.ReLU(), nn.Linear(16, 4)).double()


def global_views() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(GLOBAL_BATCH, DIM, generator=gen, dtype=torch.float64),
            torch.randn(GLOBAL_BATCH, DIM, generator=gen, dtype=torch.float64))


def loss_and_grads(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    z1, z2 = gather_with_grad(model(x1)), gather_with_grad(model(x2))
    loss = nt_xent(z1, z2, 0.5)
    loss.backward()
    average_gradients(model)
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model = make_model()
        if rank == 1:  # a different start on rank 1: prepare_for_distributed must copy rank 0's weights
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
        model = prepare_for_distributed(model)
        shard = slice(rank * GLOBAL_BATCH // world_size, (rank + 1) * GLOBAL_BATCH // world_size)
        x1, x2 = global_views()
        loss, grads = loss_and_grads(model, x1[shard], x2[shard])
        torch.save({"loss": loss, "grads": grads}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_nt_xent_equals_one_process_on_the_global_batch(tmp_path: Path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    want_loss, want_grads = loss_and_grads(make_model(), *global_views())
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.allclose(got["loss"], want_loss, atol=1e-10)
        for g, w in zip(got["grads"], want_grads, strict=True):
            assert torch.allclose(g, w, atol=1e-10), (rank, (g - w).abs().max())
