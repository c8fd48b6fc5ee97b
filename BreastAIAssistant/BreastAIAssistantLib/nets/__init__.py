"""Networks, one per file, and the registry that manifests name them by.

* :class:`UNet3d` (``unet.py``): whole-breast 3-D U-Net on the pre-contrast phase.
* :class:`SpatioTemporalSegmenter` (``spatiotemporal.py``): tumour segmenter with spatial and
  temporal transformers over all present phases, acquisition times and a phase mask.
* :class:`MRSMNet` (``mrsm.py``): ResNet(2+1)D benign/malignant classifier over lesion slices.
* :class:`ReceptorNet` (``receptors.py``): multi-task ER/PR/HER2/Ki-67 from one phase.
* :class:`DMIFNet` (``dmif.py``, with ``scattering.py``): box-prompted wavelet-scattering +
  ResNeXt classifier.

Shared pieces: ``blocks.py`` (conv blocks, encoder, decoder), ``transformer.py`` (masked
attention, position and time encodings, pooling over phases). Nothing here knows about devices.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from BreastAIAssistantLib.nets.dmif import DMIFNet
from BreastAIAssistantLib.nets.mrsm import MRSMNet
from BreastAIAssistantLib.nets.receptors import ReceptorNet
from BreastAIAssistantLib.nets.spatiotemporal import SpatioTemporalSegmenter, phase_pairs
from BreastAIAssistantLib.nets.unet import UNet3d

#: Network classes by the name a manifest's ``network.name`` uses.
NETWORKS: dict[str, type[nn.Module]] = {
    "UNet3d": UNet3d,
    "SpatioTemporalSegmenter": SpatioTemporalSegmenter,
    "MRSMNet": MRSMNet,
    "ReceptorNet": ReceptorNet,
    "DMIFNet": DMIFNet,
}


def build_network(name: str, args: Mapping[str, Any] | None = None) -> nn.Module:
    """Instantiate the registered network ``name`` with the constructor arguments ``args``.

    Raises:
        ValueError: Unknown name, arguments the constructor does not take, or invalid values.
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; known networks: {', '.join(sorted(NETWORKS))}")
    cls = NETWORKS[name]
    kwargs = dict(args or {})
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as error:
        raise ValueError(f"bad arguments for network {name!r}: {error}") from None
    return cls(**kwargs)


__all__ = [
    "NETWORKS",
    "DMIFNet",
    "MRSMNet",
    "ReceptorNet",
    "SpatioTemporalSegmenter",
    "UNet3d",
    "build_network",
    "phase_pairs",
]
