from __future__ import annotations

import pytest
import torch

from sslcourse.backbones import BACKBONES, ConvNet, build_backbone

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


def test_weight_standardization_gives_each_filter_zero_mean_and_unit_variance():
    from sslcourse.backbones import WSConv2d

    conv = WSConv2d(5, 7, 3)
    with torch.no_grad():
        conv.weight.mul_(torch.linspace(0.5, 10, 7).view(7, 1, 1, 1)).add_(3.0)  # filters of any scale and offset
    w = conv.standardized_weight().flatten(1)
    torch.testing.assert_close(w.mean(1), torch.zeros(7), atol=1e-4, rtol=0)
    torch.testing.assert_close(w.var(1, unbiased=False), torch.ones(7), atol=1e-3, rtol=0)
    x = torch.randn(2, 5, 8, 8)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, w.view_as(conv.weight), conv.bias))


def test_group_norm_convnet_features_do_not_depend_on_the_rest_of_the_batch():
    net = ConvNet(width=6, depth=3, norm="group").train()
    x = torch.rand(4, 3, 16, 16)
    torch.testing.assert_close(net(x)[:1], net(x[:1]), atol=1e-5, rtol=0)
    batch_norm = ConvNet(width=6, depth=3).train()
    assert not torch.allclose(batch_norm(x)[:1], batch_norm(x[:1]), atol=1e-3)


def test_an_unknown_norm_names_the_valid_ones():
    with pytest.raises(ValueError, match="batch, group"):
        ConvNet(norm="layer")
