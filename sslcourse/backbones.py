"""Backbones (encoders) of the course. Each maps images (B, 3, H, W) in [0, 1] to features
(B, feature_dim) and exposes ``feature_dim`` so heads can be built on top.

- ``ConvNet``: a few conv-BN-ReLU blocks; trains in seconds on a CPU (the ``ci`` profile).
- ``resnet18_cifar``: ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool), the
  standard backbone of SSL benchmarks on 32 px images (SimCLR paper, appendix B.9).

Course: :ref:`ch0-first-run` (the ConvNet on a CPU, ResNet-18 on a GPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .vit import TinyViT

BACKBONES = ["convnet", "resnet18", "vit"]


class WSConv2d(nn.Conv2d):
    """Conv2d with weight standardization (Qiao et al. 2019): each output filter's weights are
    used as (W - mean) / sqrt(var + eps) over its fan-in (input channels x kernel), so every
    filter has zero mean and unit variance whatever the stored weights. With GroupNorm it
    replaces BatchNorm where batch statistics are unwanted (BiT, Kolesnikov et al. 2020)."""

    eps = 1e-8  # on the variance; small beside a 3x3 filter's (about 1e-2 at its initialisation)

    def standardized_weight(self) -> Tensor:
        """Return the weight (C_out, C_in, k, k) standardized per output filter."""
        w = self.weight
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return (w - mean) / torch.sqrt(var + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.standardized_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


NORMS = ["batch", "group"]


def _conv_norm(c_in: int, c_out: int, norm: str) -> list[nn.Module]:
    if norm == "batch":
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
    if norm == "group":  # 8 groups where the width allows (the GroupNorm paper uses 32 on wider nets)
        return [WSConv2d(c_in, c_out, 3, padding=1, bias=False), nn.GroupNorm(math.gcd(c_out, 8), c_out)]
    raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")


class ConvNet(nn.Module):
    """``depth`` blocks of 3x3 conv -> norm -> ReLU, doubling the width and halving the
    resolution after each block but the first, then global average pooling.

    Args:
        width: channels of the first block; the last has ``width * 2**(depth-1)``.
        depth: number of blocks (4 gives feature_dim = 8 * width).
        norm: "batch" (BatchNorm) or "group" (weight-standardized conv + GroupNorm: no batch
            statistics, so a sample's features do not depend on the rest of its batch).
    """

    def __init__(self, width: int = 32, depth: int = 4, in_channels: int = 3, norm: str = "batch") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(depth):
            c_out = width * 2**i
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            layers += [*_conv_norm(c_in, c_out, norm), nn.ReLU(inplace=True)]
            c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.feature_dim = c_in

        self.downsampling = 2 ** (depth - 1)  # input side / feature-map side

    def feature_map(self, x: Tensor) -> Tensor:
        """Return the last block's map (B, feature_dim, H / downsampling, W / downsampling):
        what dense pretext tasks (inpainting, colorization) decode from."""
        return self.blocks(x)

    def stages(self) -> list[nn.Module]:
        """Return the blocks as modules in input-to-output order, each [max-pool,] conv, BN, ReLU
        (sharing this network's layers): what ``block_features`` pools and ``freeze_blocks`` freezes."""
        stages, current = [], []
        for layer in self.blocks:
            current.append(layer)
            if isinstance(layer, nn.ReLU):
                stages.append(nn.Sequential(*current))
                current = []
        return stages

    def block_features(self, x: Tensor) -> list[Tensor]:
        """Return each block's globally average-pooled output, [(B, width * 2**i)] for i < depth:
        what a probe of intermediate layers reads (RotNet's best features are mid-network)."""
        return _pooled_stages(self.stages(), x)

    def forward(self, x: Tensor) -> Tensor:
        return self.feature_map(x).mean(dim=(2, 3))  # global average pool -> (B, feature_dim)


def resize_to(images: Tensor, size: tuple[int, int], antialias: bool = False) -> Tensor:
    """Return ``images`` (B, C, h, w) at ``size`` (H, W), bilinear, or unchanged when they already
    have it: a decoder's output where the encoder's pooling floored an odd side (20 px -> 2 x 2 ->
    16 px), or a generator built for another size. ``antialias`` for downsizing."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False, antialias=antialias)


def _pooled_stages(stages: list[nn.Module], x: Tensor) -> list[Tensor]:
    """Return the global average (B, C_i) of each stage's output, the stages applied in turn."""
    pooled = []
    for stage in stages:
        x = stage(x)
        pooled.append(x.mean(dim=(2, 3)))
    return pooled


class ConvDecoder(nn.Module):
    """Map a feature map (B, in_channels, h, w) to an output (B, out_channels, h * 2**n_up,
    w * 2**n_up): ``n_up`` blocks of 2x nearest upsampling -> 3x3 conv -> BatchNorm -> ReLU,
    halving the channels, then a 1x1 conv. The decoder of the course's dense pretext tasks and
    autoencoders; ``ConvNet(depth=d)`` pairs with ``n_up = d - 1``.

    Args:
        in_channels: channels of the map (the encoder's ``feature_dim``).
        out_channels: channels to predict (3 for RGB, 2 for Lab's ab, K for K-way logits).
        n_up: number of 2x upsampling steps.
    """

    def __init__(self, in_channels: int, out_channels: int, n_up: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(n_up):
            c_out = max(c // 2, 8)
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c_out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c = c_out
        layers.append(nn.Conv2d(c, out_channels, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, feature_map: Tensor) -> Tensor:
        return self.net(feature_map)


class ConvGenerator(nn.Module):
    """Map a code (B, latent_dim) to image logits (B, out_channels, image_size, image_size): a
    linear layer to a (4 * width, s, s) map with s = image_size / 4, two blocks of 2x nearest
    upsampling -> 3x3 conv -> BatchNorm -> ReLU (4 * width -> 2 * width -> width channels), then
    a 3x3 conv. The decoder of the course's autoencoders and VAEs and the generator of its GANs
    (DCGAN's plan, Radford et al. 2016, with upsampling + conv in place of transposed
    convolutions, which leave checkerboard artefacts). It returns logits: the caller applies the
    sigmoid (or reads them as Bernoulli logits).

    Args:
        latent_dim: size of the code.
        out_channels: channels of the image (3, RGB).
        image_size: side of the output, a multiple of 4 (20, 32 and 64 px in the profiles).
        width: channels of the last block (the encoder ``ConvNet``'s first-block width).
    """

    def __init__(self, latent_dim: int, out_channels: int = 3, image_size: int = 20, width: int = 16) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4 (two 2x upsamplings), got {image_size}")
        self.latent_dim, self.side = latent_dim, image_size // 4
        c = 4 * width
        n = c * self.side**2
        self.project = nn.Sequential(nn.Linear(latent_dim, n, bias=False), nn.BatchNorm1d(n), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for c_out in (2 * width, width):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c_out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c = c_out
        layers.append(nn.Conv2d(c, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, code: Tensor) -> Tensor:
        if code.ndim != 2 or code.shape[1] != self.latent_dim:
            raise ValueError(f"expected codes of shape (B, {self.latent_dim}), got {tuple(code.shape)}")
        x = self.project(code).view(len(code), -1, self.side, self.side)
        return self.net(x)


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without its classifier; ``feature_dim`` = 512 for ResNet-18."""

    def __init__(self, net: nn.Module, feature_dim: int, downsampling: int) -> None:
        super().__init__()
        self.net, self.feature_dim = net, feature_dim
        self.downsampling = downsampling  # input side / feature-map side

    def feature_map(self, x: Tensor) -> Tensor:
        """Return the last stage's map (B, feature_dim, H / downsampling, W / downsampling), for
        dense pretext tasks as ``ConvNet.feature_map``."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def stages(self) -> list[nn.Module]:
        """Return the four stages as modules, the stem counted with the first (as ``ConvNet.stages``)."""
        n = self.net
        return [nn.Sequential(n.conv1, n.bn1, n.relu, n.maxpool, n.layer1), n.layer2, n.layer3, n.layer4]

    def block_features(self, x: Tensor) -> list[Tensor]:
        """Return each of the four stages' globally average-pooled outputs (as ``ConvNet.block_features``)."""
        return _pooled_stages(self.stages(), x)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def resnet18_cifar(in_channels: int = 3) -> ResNetBackbone:
    """Return ResNet-18 with the CIFAR stem: conv1 is 3x3 stride 1 and the max-pool is removed,
    so a 32 px image keeps a 4x4 map before pooling instead of 1x1."""
    from torchvision.models import resnet18

    net = resnet18(num_classes=10)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return ResNetBackbone(net, 512, downsampling=8)  # layers 2-4 each halve the side


def build_backbone(name: str, **kwargs: int | str) -> nn.Module:
    """Return backbone ``name`` (one of ``BACKBONES``) built with ``kwargs``."""
    if name == "convnet":
        return ConvNet(**kwargs)
    if name == "resnet18":
        return resnet18_cifar(**kwargs)
    if name == "vit":
        return TinyViT(**kwargs)
    raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(BACKBONES)}")


@torch.no_grad()
def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
