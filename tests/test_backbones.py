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
