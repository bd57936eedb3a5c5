"""Masked autoencoder (He et al. 2022, Masked Autoencoders Are Scalable Vision Learners).

Course: :ref:`ch4b-mae`. A random 75% of an image's patches is hidden; a ViT
encoder sees only the visible patches (and [CLS]); a small decoder gets the encoded visible
tokens back in patch order with one shared learned mask token in each hidden place, adds its
own position embeddings, runs a few transformer blocks and predicts every patch's pixels; the
loss (``losses.mae_loss``) reads the hidden patches only. Since the encoder never sees a mask
token, it runs on a quarter of the tokens, and evaluation images (all patches, no mask token)
look like what it was trained on.

Departures from the reference code, for the course's small images: learned decoder position
embeddings (the reference uses fixed 2-D sine-cosine ones), a TinyViT encoder, a decoder of
one or two narrow blocks (the paper's: 8 blocks of width 512).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch
from ..losses import mae_loss
from ..masking import patchify, random_masking, unpatchify
from ..vit import Block, TinyViT
from .base import CourseContext, Method, MethodSpec
from .supervised import supervised_views


def _resize_grid(pos: Tensor, grid: int) -> Tensor:
    """Return position embeddings (1, 1 + N, D) of a square grid resized to grid x grid patches
    (bicubic, the [CLS] entry kept), as ``TinyViT`` does for its own."""
    side = int(round((pos.shape[1] - 1) ** 0.5))
    if side == grid:
        return pos
    patches = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], patches.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


class MAE(Method):
    """TinyViT encoder on the visible patches + a light transformer decoder to the pixels.

    ``encode(x)`` is the encoder's normalised [CLS] output on full, unmasked images (the
    TinyViT's ``forward``; MAE's linear probe reads the [CLS] token); the projection head is
    the identity (z = h): the decoder works on tokens, not on the pooled feature.

    Args:
        image_size, patch_size, dim, depth, heads, in_channels: the encoder (``TinyViT``);
            other image sizes work through interpolated position embeddings.
        mask_ratio: fraction of patches hidden (the paper: 0.75).
        decoder_dim, decoder_depth, decoder_heads: the decoder's width, blocks and heads (the
            paper: 512, 8, 16; it found even one block enough for fine-tuning).
        normalize_target: regress per-patch normalised pixels (the paper's best targets,
            Table 1d); False regresses raw pixels (what reconstruction pictures should show).
        mask_token_in_encoder: the paper's ablation (Table 1c): the encoder sees every patch,
            a learned mask token (plus its position) in place of each hidden one; the decoder
            then reads the encoder's tokens as they are.
    """

    def __init__(self, image_size: int = 20, patch_size: int = 4, dim: int = 96, depth: int = 4, heads: int = 3,
                 in_channels: int = 3, mask_ratio: float = 0.75, decoder_dim: int = 64, decoder_depth: int = 2,
                 decoder_heads: int = 4, normalize_target: bool = True, mask_token_in_encoder: bool = False) -> None:
        super().__init__(TinyViT(image_size, patch_size, dim, depth, heads, in_channels))
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.mask_ratio, self.normalize_target = mask_ratio, normalize_target
        self.mask_token_in_encoder = mask_token_in_encoder
        self.patch_size, self.in_channels = patch_size, in_channels
        grid = self.backbone.grid
        if mask_token_in_encoder:
            self.encoder_mask_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim) * 0.02)  # shared by every hidden patch
        self.decoder_pos = nn.Parameter(torch.randn(1, 1 + grid**2, decoder_dim) * 0.02)
        self.decoder_blocks = nn.ModuleList(Block(decoder_dim, decoder_heads) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_head = nn.Linear(decoder_dim, patch_size * patch_size * in_channels)

    def encode_visible(self, x: Tensor, ids_keep: Tensor, mask: Tensor) -> Tensor:
        """Return the encoder's normalised output tokens: (B, 1 + K, dim), [CLS] then the visible
        patches in ``ids_keep`` order; with ``mask_token_in_encoder``, (B, 1 + N, dim) in patch order."""
        tokens = self.backbone.tokens(x)  # (B, 1 + N, dim): positions already added
        cls, patches = tokens[:, :1], tokens[:, 1:]
        if self.mask_token_in_encoder:
            positions = self.backbone.position_embedding(x.shape[-1] // self.patch_size)[:, 1:]
            patches = torch.where(mask[..., None], self.encoder_mask_token + positions, patches)
        else:
            patches = torch.gather(patches, 1, ids_keep[..., None].expand(-1, -1, patches.shape[-1]))
        return self.backbone.norm(self.backbone.run_blocks(torch.cat([cls, patches], dim=1)))

    def decode(self, latent: Tensor, ids_restore: Tensor) -> Tensor:
        """Return the predicted patches (B, N, p²C) from the encoder's tokens ``latent`` and the
        shuffle's inverse ``ids_restore`` (B, N) (``masking.random_masking``)."""
        y = self.decoder_embed(latent)
        b, n = ids_restore.shape
        if not self.mask_token_in_encoder:  # append mask tokens, then unshuffle to patch order
            fill = self.mask_token.expand(b, n + 1 - y.shape[1], -1)
            shuffled = torch.cat([y[:, 1:], fill], dim=1)
            patches = torch.gather(shuffled, 1, ids_restore[..., None].expand(-1, -1, y.shape[-1]))
            y = torch.cat([y[:, :1], patches], dim=1)
        y = y + _resize_grid(self.decoder_pos, int(round(n**0.5)))
        for block in self.decoder_blocks:
            y = block(y)
        return self.decoder_head(self.decoder_norm(y))[:, 1:]  # drop [CLS]

    def predict(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Return (predicted patches (B, N, p²C), mask (B, N) bool, True = hidden) of images x
        (B, C, H, W) under a fresh random mask (``generator``, else torch's global RNG)."""
        n = (x.shape[-1] // self.patch_size) * (x.shape[-2] // self.patch_size)
        ids_keep, mask, ids_restore = random_masking(len(x), n, self.mask_ratio, generator, x.device)
        return self.decode(self.encode_visible(x, ids_keep, mask), ids_restore), mask

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        pred, mask = self.predict(x)
        loss = mae_loss(pred, patchify(x, self.patch_size), mask, self.normalize_target)
        with torch.no_grad():  # z on the full image, as evaluation sees it
            z = self.embed(x)
        return {"loss": loss, **self.collapse_diagnostics(z)}

    @torch.no_grad()
    def reconstruct(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Return (images (B, C, H, W), mask (B, H, W) bool, True = hidden) for pictures: the
        visible patches of ``x`` with the predicted pixels pasted into the hidden ones.

        With ``normalize_target`` the decoder predicts each patch up to its own mean and scale;
        un-normalising with the true patch's statistics would paint the answer's colour and
        contrast in (a leak), so the prediction is rescaled with the mean and standard deviation
        of the image's *visible* pixels instead. Pictures of what the model knows are best drawn
        from a raw-pixel model (``normalize_target=False``)."""
        p = self.patch_size
        pred, mask = self.predict(x, generator)
        true = patchify(x, p)
        if self.normalize_target:
            visible = true[~mask].reshape(len(x), -1)  # every sample keeps the same number K
            pred = pred * visible.std(1)[:, None, None] + visible.mean(1)[:, None, None]
        patches = torch.where(mask[..., None], pred, true)
        pixel_mask = unpatchify(mask[..., None].expand(-1, -1, p * p).float(), p, 1)[:, 0] > 0.5
        return unpatchify(patches, p, self.in_channels).clamp(0, 1), pixel_mask


def mae_settings(context: CourseContext) -> dict:
    """The encoder's image size is the profile's (20 px in ci/cpu, 32 px in gpu) when known."""
    return {"image_size": context.image_size} if context.image_size else {}


# MAE builds its own TinyViT (in_channels=()); mask ratio 0.75 and normalised-pixel targets are
# the paper's (He et al. 2022, Table 1); one mild view (crop + flip: the paper's only augmentation).
SPEC = MethodSpec(name="mae", method=MAE, settings=mae_settings, views=supervised_views, in_channels=())
