"""Input makers of masked prediction: patches, random patch masks, the context encoder's
central hole and BERT's token corruption. Course: :ref:`ch4b-inpainting`, :ref:`ch4b-bert`, :ref:`ch4b-mae`.

Every function is pure: no state, randomness only from an explicit ``generator`` (or torch's
global RNG when it is None), and the result lives on the device of its input (or ``device``).

Patch layout (the one of MAE's reference code): an image (B, C, H, W) is cut into a
(H / p) x (W / p) grid of p x p patches, numbered row-major (patch n is at row n // (W / p),
column n % (W / p)); each patch is flattened in (row, column, channel) order, so entry
``(i * p + j) * C + c`` of a patch is pixel (i, j) of channel c.
"""

from __future__ import annotations

import torch
from torch import Tensor


def patchify(x: Tensor, patch: int) -> Tensor:
    """Return the patches (B, N, patch * patch * C) of images ``x`` (B, C, H, W), N = HW / patch².

    Row-major patches, each flattened as (p, p, C) (the module's docstring); ``unpatchify``
    inverts it.

    Args:
        x: (B, C, H, W) images with H and W multiples of ``patch``.
        patch: side p of a square patch, pixels.
    """
    if x.ndim != 4:
        raise ValueError(f"patchify expects images (B, C, H, W), got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if patch < 1 or h % patch or w % patch:
        raise ValueError(f"image sides {(h, w)} must be multiples of the patch size, got patch={patch}")
    gh, gw = h // patch, w // patch
    x = x.reshape(b, c, gh, patch, gw, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, patch * patch * c)  # (B, gh, gw, p, p, C)


def unpatchify(patches: Tensor, patch: int, channels: int = 3) -> Tensor:
    """Return the images (B, C, H, W) of square grids of ``patches`` (B, N, patch * patch * C).

    The inverse of ``patchify`` for square images: H = W = patch * sqrt(N).

    Args:
        patches: (B, N, p * p * C), N a perfect square.
        patch: side p of a patch.
        channels: C.
    """
    if patches.ndim != 3 or patches.shape[-1] != patch * patch * channels:
        raise ValueError(f"unpatchify expects patches (B, N, {patch * patch * channels}) for patch={patch} and "
                         f"{channels} channels, got shape {tuple(patches.shape)}")
    b, n, _ = patches.shape
    side = int(round(n**0.5))
    if side * side != n:
        raise ValueError(f"unpatchify needs a square grid of patches, got N={n}")
    x = patches.reshape(b, side, side, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, side * patch, side * patch)


def n_kept(n_patches: int, ratio: float) -> int:
    """Return K = round((1 - ratio) * N), the number of patches ``random_masking`` keeps visible."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    return int(round((1.0 - ratio) * n_patches))


def random_masking(batch: int, n_patches: int, ratio: float, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Return (ids_keep (B, K), mask (B, N) bool, True = masked, ids_restore (B, N)): an independent
    uniformly random set of K = round((1 - ratio) * N) visible patches for each sample.

    MAE's per-sample shuffle (He et al. 2022): draw noise u ~ U(0, 1)^N, ids_shuffle =
    argsort(u); the first K of ids_shuffle are kept, the rest masked. ids_restore =
    argsort(ids_shuffle) undoes the shuffle: ``torch.gather(shuffled, 1, ids_restore)`` puts
    the tokens [visible..., mask tokens...] back in patch order.

    Args:
        batch: B, the number of samples.
        n_patches: N, patches per sample.
        ratio: fraction of patches masked, in [0, 1) (MAE: 0.75).
        generator: source of the noise (None: torch's global RNG); it must live on ``device``.
        device: where the tensors are made (default: the CPU).
    """
    if batch < 1 or n_patches < 1:
        raise ValueError(f"random_masking needs batch >= 1 and n_patches >= 1, got {batch} and {n_patches}")
    k = n_kept(n_patches, ratio)
    if k < 1:
        raise ValueError(f"mask ratio {ratio} keeps no patch of {n_patches}: lower it")
    noise = torch.rand(batch, n_patches, generator=generator, device=device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = torch.ones(batch, n_patches, dtype=torch.bool, device=noise.device)
    mask[:, :k] = False
    mask = torch.gather(mask, 1, ids_restore)  # back in patch order
    return ids_shuffle[:, :k], mask, ids_restore


def center_mask(size: int | tuple[int, int], fraction: float = 0.5,
                device: torch.device | str | None = None) -> Tensor:
    """Return a (H, W) bool mask, True on the central square region the context encoder fills in.

    Pathak et al. 2016 (Context Encoders) hide the central 64 x 64 of a 128 x 128 image:
    ``fraction`` = 0.5 of each side, a quarter of the area. The region spans rows
    [(H - h) // 2, (H - h) // 2 + h) with h = round(fraction * H) (likewise for columns).

    Args:
        size: H (square) or (H, W).
        fraction: side of the hole over the side of the image, in (0, 1).
        device: where the mask is made.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if h < 1 or w < 1:
        raise ValueError(f"center_mask needs positive sides, got {(h, w)}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    mh, mw = max(1, round(fraction * h)), max(1, round(fraction * w))
    top, left = (h - mh) // 2, (w - mw) // 2
    mask = torch.zeros(h, w, dtype=torch.bool, device=device)
    mask[top:top + mh, left:left + mw] = True
    return mask


def random_block_mask(batch: int, size: int, block: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> Tensor:
    """Return (B, H, H) bool masks, True on one ``block`` x ``block`` square at a uniformly random
    position per sample (the context encoder's "random block" variant, Pathak et al. 2016).

    Args:
        batch: B.
        size: H, the side of the (square) images.
        block: side of the hidden square, 1 <= block <= size.
        generator: source of the positions (None: torch's global RNG).
        device: where the masks are made.
    """
    if not 1 <= block <= size:
        raise ValueError(f"block must be in [1, {size}], got {block}")
    top = torch.randint(0, size - block + 1, (batch, 1, 1), generator=generator, device=device)
    left = torch.randint(0, size - block + 1, (batch, 1, 1), generator=generator, device=device)
    r = torch.arange(size, device=top.device)
    rows = (r[None, :, None] >= top) & (r[None, :, None] < top + block)
    cols = (r[None, None, :] >= left) & (r[None, None, :] < left + block)
    return rows & cols


def bert_mask(tokens: Tensor, mask_token: int, vocab_size: int, special_tokens: tuple[int, ...] = (),
              p: float = 0.15, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Return (inputs (B, L), targets (B, L), selected (B, L) bool): BERT's masked-LM corruption.

    Devlin et al. 2019: each non-special position is selected with probability ``p`` (0.15);
    a selected token becomes [MASK] with probability 0.8, a token drawn uniformly from the
    non-special vocabulary with probability 0.1 (it may by chance be the original), and stays
    unchanged with probability 0.1. The loss reads only the selected positions: targets hold
    the original token there and -100 (``F.cross_entropy``'s default ignore index) elsewhere.

    Args:
        tokens: (B, L) integer ids in [0, vocab_size).
        mask_token: the id of [MASK] (special: never produced as a random replacement).
        vocab_size: number of ids.
        special_tokens: ids never selected nor produced as replacements ([CLS], [SEP], [PAD]...).
        p: selection probability, in (0, 1].
        generator: source of the draws (None: torch's global RNG); on ``tokens``' device.
    """
    if tokens.ndim != 2 or tokens.is_floating_point():
        raise ValueError(f"bert_mask expects integer tokens (B, L), got {tokens.dtype} of shape {tuple(tokens.shape)}")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if not 0 <= mask_token < vocab_size:
        raise ValueError(f"mask_token {mask_token} is not an id of a vocabulary of {vocab_size}")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"tokens must lie in [0, {vocab_size}), got [{int(tokens.min())}, {int(tokens.max())}]")
    device = tokens.device
    special = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    special[list({mask_token, *special_tokens})] = True
    ordinary = (~special).nonzero().squeeze(1)  # the ids a random replacement is drawn from
    if len(ordinary) == 0:
        raise ValueError("every id is special: no token to draw random replacements from")

    def uniform() -> Tensor:
        return torch.rand(tokens.shape, generator=generator, device=device)

    selected = (uniform() < p) & ~special[tokens]
    action = uniform()  # one draw decides between [MASK] (< 0.8), random (< 0.9) and unchanged
    to_mask = selected & (action < 0.8)
    to_random = selected & (action >= 0.8) & (action < 0.9)
    random_ids = ordinary[torch.randint(0, len(ordinary), tokens.shape, generator=generator, device=device)]
    inputs = torch.where(to_mask, torch.full_like(tokens, mask_token), tokens)
    inputs = torch.where(to_random, random_ids, inputs)
    targets = torch.where(selected, tokens, torch.full_like(tokens, -100))
    return inputs, targets, selected
