"""PixelCNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks",
section 3.4): an autoregressive image model built of masked convolutions, probed layer by
layer as ImageGPT (Chen et al. 2020, "Generative Pretraining from Pixels") probes its
transformer.

Course: :ref:`ch3b-pixelcnn`. Each pixel is one categorical over a palette of K colours (a
k-means palette of the data's pixels, as ImageGPT quantizes colours), predicted from the pixels
before it in raster order; the loss is the NLL in nats per pixel (``losses.autoregressive``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..augment import generative_views
from ..data import Batch
from ..losses.autoregressive import bits_per_dim, pixel_nll
from .base import Method, MethodSpec
from .gan import eval_mode

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights: palettes are sorted dark to bright


class MaskedConv2d(nn.Conv2d):
    """A k x k convolution (k odd, 'same' padding) that sees only the pixels before the centre in
    raster order: the rows above and the pixels to its left. Type "A" (the first layer) also
    excludes the centre, so the output at a pixel never depends on that pixel's input; type "B"
    (every later layer) includes it, which is safe once the input at a position already depends
    only on earlier pixels. One colour group: no R/G/B sub-masks (section 3.4)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str) -> None:
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a centre pixel), got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        mask[:c] = 1  # the rows above
        mask[c, : c + (mask_type == "B")] = 1  # the pixels to the left, and the centre for type B
        self.register_buffer("mask", mask[None, None])
        self.mask_type = mask_type

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


def _check_palette(palette: Tensor) -> None:
    if palette.ndim != 2 or palette.shape[1] != 3 or not palette.is_floating_point() or len(palette) < 2:
        raise ValueError(f"a palette is a float (K, 3) tensor of RGB colours in [0, 1] with K >= 2; got "
                         f"{tuple(palette.shape)} {palette.dtype}")


def uniform_palette(bits: int = 2) -> Tensor:
    """Return the (2**(3 * bits), 3) palette of ``bits`` evenly spaced levels per channel
    (2 bits: 64 colours), the default before a palette is fitted to data."""
    levels = torch.linspace(0, 1, 2**bits)
    return torch.cartesian_prod(levels, levels, levels)


def quantize(x: Tensor, palette: Tensor) -> Tensor:
    """Return the index (B, H, W) int64 of the nearest palette colour (Euclidean, in RGB) of each
    pixel of images ``x`` (B, 3, H, W) float in [0, 1]; ``palette`` (K, 3)."""
    if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"quantize expects float images (B, 3, H, W) in [0, 1]; got {tuple(x.shape)} {x.dtype}")
    _check_palette(palette)
    p = palette.to(x.device, torch.float32)
    pixels = x.float().permute(0, 2, 3, 1)  # (B, H, W, 3)
    d2 = (pixels * pixels).sum(-1, keepdim=True) - 2 * pixels @ p.T + (p * p).sum(1)  # (B, H, W, K)
    return d2.argmin(-1)


def palette_from_images(images: Tensor, k: int, seed: int = 0, iterations: int = 30,
                        max_pixels: int = 200_000) -> Tensor:
    """Return a k-colour palette (k, 3) float in [0, 1] fitted to the pixels of ``images``
    (N, 3, H, W) uint8 by k-means in RGB: k-means++ seeding (Arthur & Vassilvitskii 2007), then
    Lloyd iterations until no centre moves. The same seed gives the same palette; colours are
    sorted dark to bright. At most ``max_pixels`` pixels, drawn at random, are clustered."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"palette_from_images expects uint8 images (N, 3, H, W); got "
                         f"{tuple(images.shape)} {images.dtype}")
    gen = torch.Generator().manual_seed(seed)
    pixels = images.detach().cpu().permute(0, 2, 3, 1).reshape(-1, 3)
    if len(pixels) > max_pixels:
        pixels = pixels[torch.randperm(len(pixels), generator=gen)[:max_pixels]]
    pixels = pixels.float() / 255
    if not 2 <= k <= len(pixels):
        raise ValueError(f"k must be in [2, {len(pixels)}] (the pixels given), got {k}")
    centres = pixels[torch.randint(len(pixels), (1,), generator=gen)]
    d2 = (pixels - centres[0]).square().sum(1)
    for _ in range(k - 1):  # each new centre drawn with probability proportional to d^2
        new = pixels[torch.multinomial(d2 + 1e-12, 1, generator=gen)]
        centres = torch.cat([centres, new])
        d2 = torch.minimum(d2, (pixels - new).square().sum(1))
    for _ in range(iterations):
        assign = torch.cdist(pixels, centres).argmin(1)
        counts = torch.bincount(assign, minlength=k)[:, None]
        sums = torch.zeros_like(centres).index_add_(0, assign, pixels)
        moved = torch.where(counts > 0, sums / counts.clamp_min(1), centres)  # an empty cluster stays
        if torch.equal(moved, centres):
            break
        centres = moved
    return centres[(centres @ torch.tensor(_LUMA)).argsort()]


class PixelCNNNet(nn.Module):
    """The layer stack, usable as a backbone: palette index -> one-hot -> 7x7 type-A masked conv
    -> ``n_layers`` residual blocks h + conv_B(ReLU(h)) (3x3 type B) -> ReLU -> 1x1 conv to K
    logits. ``forward(x)`` on images (B, 3, H, W) returns the pooled hidden state (B, channels)
    of layer ``probe_layer`` (layer 0: the type-A conv's output; layer i: the i-th block's).
    The palette (K, 3) is a buffer: it travels with the weights and the checkpoints."""

    def __init__(self, palette: Tensor, channels: int = 64, n_layers: int = 5, probe_layer: int | None = None) -> None:
        super().__init__()
        _check_palette(palette)
        k = len(palette)
        self.register_buffer("palette", palette.detach().float().clone())
        self.first = MaskedConv2d(k, channels, 7, "A")  # on one-hot indices
        self.layers = nn.ModuleList(MaskedConv2d(channels, channels, 3, "B") for _ in range(n_layers))
        self.out = nn.Conv2d(channels, k, 1)
        self.probe_layer = (n_layers + 1) // 2 if probe_layer is None else probe_layer  # the middle one
        if not 0 <= self.probe_layer <= n_layers:
            raise ValueError(f"probe_layer must be in [0, {n_layers}] (n_layers + 1 hidden states), got {probe_layer}")
        self.feature_dim = channels

    def hidden_states(self, indices: Tensor, up_to: int | None = None) -> list[Tensor]:
        """Return the hidden states (B, channels, H, W) of layers 0..``up_to`` (default: all) for
        palette indices (B, H, W) int64."""
        one_hot = F.one_hot(indices, len(self.palette)).permute(0, 3, 1, 2).to(self.first.weight.dtype)
        return self.states_of(one_hot, up_to)

    def states_of(self, one_hot: Tensor, up_to: int | None = None) -> list[Tensor]:
        """``hidden_states`` of one-hot input (B, K, H, W): differentiable in the input, so one can
        check which input pixels an output depends on."""
        h = self.first(one_hot)
        states = [h]
        for layer in self.layers[: len(self.layers) if up_to is None else up_to]:
            h = h + layer(F.relu(h))
            states.append(h)
        return states

    def logits(self, state: Tensor) -> Tensor:
        """Return the logits (B, K, H, W) of the last hidden state."""
        return self.out(F.relu(state))

    def layer_features(self, x: Tensor) -> list[Tensor]:
        """Return the globally average-pooled hidden state (B, channels) of every layer (n_layers + 1)
        for images ``x`` (B, 3, H, W) in [0, 1]: the inputs of a layer-wise linear probe."""
        return [s.mean(dim=(2, 3)) for s in self.hidden_states(quantize(x, self.palette))]

    def forward(self, x: Tensor) -> Tensor:
        return self.hidden_states(quantize(x, self.palette), up_to=self.probe_layer)[-1].mean(dim=(2, 3))


class PixelCNN(Method):
    """PixelCNN on one-hot palette indices; the backbone is its ``PixelCNNNet``, the projection head the
    identity, so ``encode(x)`` = ``embed(x)`` = z = the pooled state of layer ``probe_layer``
    (default: the middle one; ImageGPT's best linear-probe features are mid-network).

    Args:
        palette: (K, 3) colours in [0, 1] (``palette_from_images``); default ``uniform_palette(2)``.
        channels, n_layers: the hidden width and the number of type-B residual blocks.
        probe_layer: the layer ``encode`` reads, in [0, n_layers] (default: the middle).
        image_size: side of the images ``sample`` draws by default.
    """

    def __init__(self, palette: Tensor | None = None, channels: int = 64, n_layers: int = 5,
                 probe_layer: int | None = None, image_size: int = 32) -> None:
        super().__init__(PixelCNNNet(uniform_palette(2) if palette is None else palette, channels, n_layers,
                                     probe_layer))
        self.image_size = image_size

    @property
    def palette(self) -> Tensor:
        return self.backbone.palette

    def set_palette(self, palette: Tensor) -> None:
        """Replace the palette by ``palette`` (K, 3) of the same K (the logits' size)."""
        _check_palette(palette)
        if palette.shape != self.palette.shape:
            raise ValueError(f"the palette must keep its shape {tuple(self.palette.shape)}; got {tuple(palette.shape)}"
                             " (build a new PixelCNN for another K)")
        self.palette.copy_(palette.detach())

    def layer_features(self, x: Tensor) -> list[Tensor]:
        """Return every layer's pooled hidden state [(B, channels)] (``PixelCNNNet.layer_features``)."""
        return self.backbone.layer_features(x)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        """Return "loss" (NLL, nats per pixel), "bits_per_dim" and the collapse diagnostics of z
        (the probe layer's pooled state) for the images ``batch.views[0]`` (B, 3, H, W)."""
        indices = quantize(batch.views[0], self.palette)
        states = self.backbone.hidden_states(indices)
        loss = pixel_nll(self.backbone.logits(states[-1]), indices)
        z = states[self.backbone.probe_layer].mean(dim=(2, 3))
        return {"loss": loss, "bits_per_dim": bits_per_dim(loss.detach()), **self.collapse_diagnostics(z)}

    def sample(self, n: int, generator: torch.Generator | None = None, size: int | None = None) -> Tensor:
        """Return n images (n, 3, size, size) of palette colours (size: ``image_size``), drawn pixel by
        pixel in raster order from the model's categoricals (``generator`` seeds the draws). The
        pixel (i, j) depends only on rows <= i, so each pass reads only those rows."""
        size = size or self.image_size
        indices = torch.zeros(n, size, size, dtype=torch.long, device=self.palette.device)
        with eval_mode(self.backbone):
            for i in range(size):
                for j in range(size):
                    logits = self.backbone.logits(self.backbone.hidden_states(indices[:, : i + 1])[-1])[:, :, i, j]
                    indices[:, i, j] = torch.multinomial(logits.float().softmax(1), 1, generator=generator)[:, 0]
        return self.palette[indices].permute(0, 3, 1, 2).contiguous()


# The palette is data: the class starts with the uniform 2-bit one (64 colours); the chapter
# fits one to the training images and passes it, build_method("pixelcnn", ...,
# palette=palette_from_images(train.images, k, seed=0)) (or calls set_palette for the same k).
# Sizes: the course's, for a CPU. No backbone from the profile (in_channels=()): the network is
# the model. One view, the whole image (generative_views).
SPEC = MethodSpec(name="pixelcnn", method=PixelCNN,
                  settings=lambda context: {"image_size": context.image_size or 32},
                  views=generative_views, in_channels=())
