"""Deep features from an ImageNet-pretrained 2-D ResNet, when the user has the weights.

The Front. Med. 2024 multimodal deep-learning radiomics study (``shared/seeds/002``) takes a
pretrained ResNet-50 on a rectangular ROI around the lesion in each image, reads the 2048 values
of its global average-pooling layer and reduces them with PCA (32 components per modality). The
pretrained weights cannot be downloaded by this project, and ``torchvision`` would pull a CUDA
build of torch, so :class:`ResNet` is this project's own ResNet with exactly torchvision's layout
(parameter and buffer names and shapes of ``resnet18/34/50/101/152``, v1.5: the stride of a
bottleneck is on its 3x3 convolution). A weight file saved from torchvision
(``torch.save(resnet50(weights=...).state_dict(), "resnet50.pth")``, or the ``.pth`` files
torchvision caches) therefore loads as it is: :func:`load_resnet` infers the depth from the keys.

Input (:func:`roi_input`): the lesion's largest axial slice of one image, the lesion's bounding
rectangle on it plus a margin, the 1st-99th percentile of the rectangle scaled to [0, 1], resized
to 224 x 224 (bilinear), repeated to three channels and normalised with ImageNet's mean and
standard deviation. Names: ``deep_lesion_<arch>_f<k>``; reduce them with ``--deep-pca``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from BreastAIAssistantLib.errors import BreastAIError

#: Blocks per stage of torchvision's ResNets, and whether they are bottlenecks.
ARCHITECTURES: dict[str, tuple[tuple[int, int, int, int], bool]] = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
    "resnet101": ((3, 4, 23, 3), True),
    "resnet152": ((3, 8, 36, 3), True),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def _shortcut(inplanes: int, planes: int, stride: int) -> nn.Module | None:
    if stride == 1 and inplanes == planes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                         nn.BatchNorm2d(planes))  # fmt: skip


class ResNet(nn.Module):
    """A 2-D ResNet with torchvision's parameter layout (He et al., CVPR 2016; v1.5).

    Args:
        arch: One of :data:`ARCHITECTURES`.
        num_classes: Size of the final ``fc`` layer (1000 for ImageNet weights).
    """

    def __init__(self, arch: str = "resnet50", num_classes: int = 1000) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown ResNet {arch!r}; known: {', '.join(ARCHITECTURES)}")
        self.arch = arch
        blocks, bottleneck = ARCHITECTURES[arch]
        block = _Bottleneck if bottleneck else _Basic
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for stage, (count, planes) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
            layers = []
            for k in range(count):
                layers.append(block(inplanes, planes, 2 if (k == 0 and stage > 0) else 1))
                inplanes = planes * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        self.num_features = inplanes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The global average-pooling output ``(B, 512 or 2048)``: the paper's deep features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        data: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BreastAIError(f"cannot read the weight file {path}: {first}") from exc
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise BreastAIError(f"{path} holds no state_dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}


def infer_architecture(state: dict[str, torch.Tensor]) -> str:
    """The torchvision ResNet whose layout ``state`` has."""
    bottleneck = "layer1.0.conv3.weight" in state
    blocks = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{s}.")})
                   for s in range(1, 5))  # fmt: skip
    for arch, (expected, is_bottleneck) in ARCHITECTURES.items():
        if expected == blocks and is_bottleneck == bottleneck:
            return arch
    raise BreastAIError(f"the weights are not a torchvision ResNet layout (blocks per stage "
                        f"{blocks}, bottleneck {bottleneck})")  # fmt: skip


def load_resnet(path: str | os.PathLike[str]) -> ResNet:
    """A :class:`ResNet` with the weights of a torchvision ResNet file, in eval mode.

    Raises:
        BreastAIError: missing, unreadable or non-ResNet file, or tensors of the wrong shape.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise BreastAIError(f"weight file {path} does not exist")
    state = _state_dict(path)
    arch = infer_architecture(state)
    classes = state["fc.weight"].shape[0] if "fc.weight" in state else 1000
    model = ResNet(arch, num_classes=int(classes))
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise BreastAIError(f"{path}: tensors do not fit a {arch}: "
                            f"{str(exc).splitlines()[1].strip()}") from exc  # fmt: skip
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise BreastAIError(f"{path}: not a {arch} state_dict (missing {missing[:3]}, "
                            f"unexpected {list(unexpected)[:3]})")  # fmt: skip
    return model.eval()


def roi_input(image: sitk.Image, lesion: sitk.Image, margin_mm: float = 5.0,
              size: int = 224) -> torch.Tensor:  # fmt: skip
    """The ``(1, 3, size, size)`` network input of a lesion (see the module docstring).

    Raises:
        BreastAIError: an empty lesion mask.
    """
    pixels = sitk.GetArrayViewFromImage(image).astype(np.float32)
    mask = sitk.GetArrayViewFromImage(lesion) > 0
    if pixels.ndim == 2:
        pixels, mask = pixels[None], mask[None]
    if not mask.any():
        raise BreastAIError("the lesion mask is empty")
    z = int(np.argmax(mask.reshape(mask.shape[0], -1).sum(axis=1)))
    ys, xs = np.nonzero(mask[z])
    sx, sy = image.GetSpacing()[:2]
    my, mx = (round(margin_mm / sy), round(margin_mm / sx))
    y0, y1 = max(0, ys.min() - my), min(mask.shape[1], ys.max() + 1 + my)
    x0, x1 = max(0, xs.min() - mx), min(mask.shape[2], xs.max() + 1 + mx)
    crop = pixels[z, y0:y1, x0:x1]
    lo, hi = np.percentile(crop, [1.0, 99.0])
    scaled = np.clip((crop - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
    tensor = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32))[None, None]
    tensor = nn.functional.interpolate(tensor, size=(size, size), mode="bilinear",
                                       align_corners=False)  # fmt: skip
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (tensor.expand(1, 3, size, size) - mean) / std


_MODELS: dict[str, ResNet] = {}


def imagenet_features(image: sitk.Image, lesion: sitk.Image,
                      weights: str | os.PathLike[str]) -> dict[str, float]:  # fmt: skip
    """``deep_lesion_<arch>_f<k>``: the pooled ResNet features of the lesion's ROI in ``image``
    (``lesion`` on the image's grid)."""
    key = str(Path(weights).expanduser().resolve())
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = load_resnet(key)
    with torch.inference_mode():
        vector = model.features(roi_input(image, lesion))[0].numpy()
    return {f"deep_lesion_{model.arch}_f{k:04d}": float(v) for k, v in enumerate(vector)}
