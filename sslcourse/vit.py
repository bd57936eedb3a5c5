"""A small Vision Transformer for the course's small images, with access to its attention
(Course: :ref:`ch6b-tips`, where the [CLS] attention of a DINO-trained TinyViT shows what the
network looks at; DINO itself: :ref:`ch6-distillation`).

ViT (Dosovitskiy et al. 2021) cuts an image into ``patch_size`` patches, embeds each
linearly, prepends a learned [CLS] token, adds learned position embeddings and runs
pre-norm transformer blocks; the [CLS] output is the representation. Position embeddings
are stored for the training grid and interpolated for other image sizes, so DINO's smaller
local crops go through the same network (as in the DINO reference implementation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # each (B, heads, N, d_head)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._qkv(x)
        attended = F.scaled_dot_product_attention(q, k, v)  # fused kernel where available
        x = x + self.proj(attended.transpose(1, 2).flatten(2))
        return x + self.mlp(self.norm2(x))

    def attention(self, x: Tensor) -> Tensor:
        """Return the attention weights (B, heads, N, N) this block would use on ``x``."""
        q, k, _ = self._qkv(x)
        return (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1)


class TinyViT(nn.Module):
    """ViT with a [CLS] token for images of ``image_size`` pixels.

    Args:
        image_size: training resolution (position embeddings are stored for its grid).
        patch_size: side of a patch; 4 px gives a 5 x 5 grid at 20 px.
        dim, depth, heads: width, number of blocks and attention heads (ViT-Tiny is
            192 / 12 / 3; the defaults are far smaller so a CPU trains it in minutes).
        in_channels: image channels.
    """

    def __init__(self, image_size: int = 20, patch_size: int = 4, dim: int = 96, depth: int = 4,
                 heads: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.patch_size, self.grid = patch_size, image_size // patch_size
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid**2, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.feature_dim = dim

    def _positions(self, grid: int) -> Tensor:
        if grid == self.grid:
            return self.pos_embed
        cls, patches = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        patches = patches.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
        return torch.cat([cls, patches.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)

    def tokens(self, x: Tensor) -> Tensor:
        """Return the input tokens (B, 1 + patches, dim): [CLS] and embedded patches + positions."""
        if x.shape[-1] % self.patch_size or x.shape[-2] != x.shape[-1]:
            raise ValueError(f"images must be square with a side divisible by {self.patch_size}, "
                             f"got {tuple(x.shape[-2:])}")
        grid = x.shape[-1] // self.patch_size
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, grid^2, dim)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), patches], dim=1)
        return tokens + self._positions(grid)

    def position_embedding(self, grid: int) -> Tensor:
        """Return the position embeddings (1, 1 + grid², dim) of a grid x grid image: [CLS]'s, then
        the patches' in row-major order (interpolated when grid differs from the training grid)."""
        return self._positions(grid)

    def run_blocks(self, tokens: Tensor) -> Tensor:
        """Return ``tokens`` (B, T, dim) after every block, without the final norm: for callers
        that choose the tokens themselves (MAE's encoder runs on [CLS] and the visible patches only)."""
        for block in self.blocks:
            tokens = block(tokens)
        return tokens

    def forward(self, x: Tensor) -> Tensor:
        x = self.tokens(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, 0])  # the [CLS] token

    @torch.no_grad()
    def cls_attention(self, x: Tensor) -> Tensor:
        """Return the last block's attention from [CLS] to every patch, (B, heads, grid, grid)."""
        t = self.tokens(x)
        for block in self.blocks[:-1]:
            t = block(t)
        attn = self.blocks[-1].attention(t)[:, :, 0, 1:]  # (B, heads, patches)
        side = int(attn.shape[-1] ** 0.5)
        return attn.reshape(len(x), -1, side, side)
