"""Backbone registry: convolutional trunks adapted to 112x112 face crops.

ImageNet networks downsample 32x, which leaves a 3x3 map of a 112 px face and throws away
the spatial layout that face recognition lives on. Every backbone here is adapted so that a
112x112 crop ends as a 7x7 map (16x), as in the ArcFace recipe, by removing one stride-2
step at the stem. Weights are never downloaded: all start from random initialisation.

Register a new trunk with ``@register("name")``; it must return a module whose output is a
(N, C, H, W) feature map and set ``out_channels`` on it.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

BackboneFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, BackboneFactory] = {}


def register(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Add a backbone factory to the registry under ``name``."""

    def wrap(factory: BackboneFactory) -> BackboneFactory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def list_backbones() -> list[str]:
    return sorted(_REGISTRY)


def create_backbone(name: str, drop_path: float = 0.0) -> nn.Module:
    """Build a randomly initialised backbone; ``drop_path`` is stochastic depth where supported."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(list_backbones())
        raise ValueError(f"unknown backbone {name!r} (known: {known})") from None
    return factory(drop_path=drop_path)


def _torchvision_models():  # noqa: ANN202
    """torchvision costs ~2 s to import (it pulls in torch._dynamo): only when a backbone needs it."""
    import torchvision.models

    return torchvision.models


def _with_channels(module: nn.Module, channels: int) -> nn.Module:
    module.out_channels = channels  # type: ignore[assignment]
    return module


def _resnet(builder: Callable[..., nn.Module], channels: int) -> nn.Module:
    net = builder(weights=None)
    # 3x3 stride-1 stem instead of 7x7 stride-2; the max-pool keeps one 2x step: 112 -> 7.
    stem = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    trunk = nn.Sequential(
        stem, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )
    return _with_channels(trunk, channels)


@register("resnet18")
def resnet18(drop_path: float = 0.0) -> nn.Module:
    return _resnet(_torchvision_models().resnet18, 512)


@register("resnet34")
def resnet34(drop_path: float = 0.0) -> nn.Module:
    return _resnet(_torchvision_models().resnet34, 512)


@register("resnet50")
def resnet50(drop_path: float = 0.0) -> nn.Module:
    return _resnet(_torchvision_models().resnet50, 2048)


def _mobilenet(features: nn.Sequential, channels: int) -> nn.Module:
    first_conv = features[0][0]
    first_conv.stride = (1, 1)  # 32x -> 16x downsampling
    # torchvision's MobileNetV3 uses BatchNorm momentum 0.01 (tuned for long ImageNet runs):
    # after a short face run the running statistics are still near their initial values and
    # the network in eval mode collapses to one answer. The usual 0.1 tracks them in time.
    for module in features.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1
    return _with_channels(features, channels)


@register("mobilenet_v2")
def mobilenet_v2(drop_path: float = 0.0) -> nn.Module:
    return _mobilenet(_torchvision_models().mobilenet_v2(weights=None).features, 1280)


@register("mobilenet_v3_large")
def mobilenet_v3_large(drop_path: float = 0.0) -> nn.Module:
    return _mobilenet(_torchvision_models().mobilenet_v3_large(weights=None).features, 960)


@register("mobilenet_v3_small")
def mobilenet_v3_small(drop_path: float = 0.0) -> nn.Module:
    return _mobilenet(_torchvision_models().mobilenet_v3_small(weights=None).features, 576)


@register("convnext_tiny")
def convnext_tiny(drop_path: float = 0.0) -> nn.Module:
    features = _torchvision_models().convnext_tiny(
        weights=None, stochastic_depth_prob=drop_path
    ).features
    # Patchify stem 4x4/4 -> 2x2/2, so 112 px ends at 7x7 instead of 3x3.
    features[0][0] = nn.Conv2d(3, 96, kernel_size=2, stride=2)
    return _with_channels(features, 768)


Activation = Callable[[int], nn.Module]  # channels -> the activation after a conv and its BatchNorm


def _prelu(channels: int) -> nn.Module:
    return nn.PReLU(channels)


def _relu(channels: int) -> nn.Module:
    return nn.ReLU(inplace=True)


class _InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise 3x3 -> project 1x1, PReLU (or ``act``), residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, drop_path: float, act: Activation = _prelu) -> None:
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            act(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            act(hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.residual = stride == 1 and cin == cout
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if not self.residual:
            return out
        if self.training and self.drop_path > 0:
            keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.drop_path
            out = out * keep / (1.0 - self.drop_path)
        return x + out


def _conv_bn_act(cin: int, cout: int, kernel: int, stride: int, groups: int = 1, act: Activation = _prelu) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        act(cout),
    )


@register("litface")
def litface(drop_path: float = 0.0) -> nn.Module:
    """A small face network (about 1.3M parameters).

    In the spirit of MobileFaceNet: one stride-2 stem, then inverted-residual stages
    with PReLU (faces are low-level-texture heavy, and PReLU trains better than ReLU on them),
    ending in a wide 1x1 conv at 7x7 so the embedding head can weigh each face region
    separately (global depthwise conv) instead of averaging them away. PReLU is slow where
    the embedding runs (onnxruntime on a CPU fuses ReLU into the convolution before it, not
    PReLU: 5.6x the time of ``litface_relu``, benchmarks/results/students.md).
    """
    return _litface(drop_path, _prelu)


@register("litface_relu")
def litface_relu(drop_path: float = 0.0) -> nn.Module:
    """``litface`` with ReLU: the same face-shaped network at the speed of the answering
    budget (onnxruntime folds each ReLU into its convolution)."""
    return _litface(drop_path, _relu)


def _litface(drop_path: float, act: Activation) -> nn.Module:
    stages = [  # (out channels, blocks, first stride, expansion)
        (64, 3, 2, 2),
        (128, 4, 2, 4),
        (160, 3, 2, 4),
    ]
    layers: list[nn.Module] = [
        _conv_bn_act(3, 32, 3, 2, act=act),
        _conv_bn_act(32, 32, 3, 1, groups=32, act=act),
        _conv_bn_act(32, 64, 1, 1, act=act),
    ]
    total = sum(blocks for _, blocks, _, _ in stages)
    index, cin = 0, 64
    for cout, blocks, stride, expand in stages:
        for block in range(blocks):
            rate = drop_path * index / max(total - 1, 1)
            layers.append(_InvertedResidual(cin, cout, stride if block == 0 else 1, expand, rate, act))
            cin, index = cout, index + 1
    layers.append(_conv_bn_act(cin, 512, 1, 1, act=act))
    return _with_channels(nn.Sequential(*layers), 512)


class _GreyPixels(nn.Module):
    """Luminance, averaged down 2x: the face as raw pixels (56x56 for a 112 crop)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d((x * self.luma).sum(1, keepdim=True), 2)


@register("grey_pixels")
def grey_pixels(drop_path: float = 0.0) -> nn.Module:
    """No learning at all: the floor baseline (PCA on grey pixels, with the ``linear`` head;
    see benchmarks/pca_baseline.py). Not meant for training."""
    return _with_channels(_GreyPixels(), 1)
