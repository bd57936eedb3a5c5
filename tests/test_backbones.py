from __future__ import annotations

import pytest
import torch

from sslcourse.backbones import BACKBONES, build_backbone

SMALL = {"convnet": {"width": 4, "depth": 2}, "resnet18": {}, "vit": {"image_size": 12, "patch_size": 4, "dim": 8,
                                                                     "depth": 1, "heads": 2}}


@pytest.mark.parametrize("name", BACKBONES)
def test_every_registered_backbone_builds_and_reports_its_feature_dim(name):
    for in_channels in (1, 3):
        net = build_backbone(name, in_channels=in_channels, **SMALL[name])
        assert net(torch.rand(2, in_channels, 12, 12)).shape == (2, net.feature_dim)


def test_unknown_backbone_names_the_valid_ones():
    with pytest.raises(ValueError, match="convnet, resnet18, vit"):
        build_backbone("vgg")


def test_conv_decoder_restores_the_convnets_resolution():
    from sslcourse.backbones import ConvDecoder, ConvNet

    encoder = ConvNet(width=4, depth=3, in_channels=1)
    decoder = ConvDecoder(encoder.feature_dim, out_channels=2, n_up=encoder.downsampling.bit_length() - 1)
    x = torch.rand(2, 1, 16, 16)
    assert encoder.feature_map(x).shape == (2, encoder.feature_dim, 4, 4)
    assert decoder(encoder.feature_map(x)).shape == (2, 2, 16, 16)
    assert torch.allclose(encoder(x), encoder.feature_map(x).mean(dim=(2, 3)))


def test_resnet_feature_map_is_what_it_pools():
    net = build_backbone("resnet18").eval()
    x = torch.rand(2, 3, 16, 16)
    fmap = net.feature_map(x)
    assert fmap.shape == (2, 512, 16 // net.downsampling, 16 // net.downsampling)
    assert torch.allclose(net(x), fmap.mean(dim=(2, 3)), atol=1e-5)


@pytest.mark.parametrize("name", ["convnet", "resnet18"])
def test_block_features_end_with_the_pooled_output(name):
    net = build_backbone(name, **SMALL[name]).eval()
    x = torch.rand(2, 3, 16, 16)
    blocks = net.block_features(x)
    assert len(blocks) == (2 if name == "convnet" else 4)
    assert torch.allclose(blocks[-1], net(x), atol=1e-5)
    assert [b.shape[0] for b in blocks] == [2] * len(blocks)
