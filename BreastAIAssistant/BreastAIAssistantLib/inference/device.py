"""Device policy: which device, which precision, and what to do when CUDA runs out of memory.

``auto`` = CUDA when ``torch.cuda.is_available()``, else CPU. Mixed precision (autocast, float16)
only on CUDA. On a CUDA out-of-memory error the work is retried with half the windows per batch,
down to one, and then on the CPU; each step is logged. Networks themselves know nothing about
devices.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

from BreastAIAssistantLib.errors import BreastAIError

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
T = TypeVar("T")


class DeviceError(BreastAIError):
    """The requested device is not available."""


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda[:N]`` into a device.

    Raises:
        DeviceError: unknown name, or CUDA asked for but not available.
    """
    base = name.split(":")[0]
    if base not in DEVICES:
        raise DeviceError(f"unknown device {name!r}; choose auto, cpu or cuda")
    if base == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' was asked for but PyTorch sees no CUDA GPU (CPU-only build or no "
            "driver); use --device cpu or auto"
        )
    return torch.device(name)


def describe_device(device: torch.device) -> dict[str, object]:
    """A JSON-ready description: type, GPU name and memory when CUDA."""
    info: dict[str, object] = {"device": str(device), "torch": torch.__version__}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1))
    else:
        info["threads"] = torch.get_num_threads()
    return info


@contextlib.contextmanager
def precision(device: torch.device) -> Iterator[None]:
    """``torch.inference_mode`` plus float16 autocast on CUDA only."""
    with torch.inference_mode():
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                yield
        else:
            yield


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def with_oom_fallback(
    run: Callable[[torch.device, int], T], device: torch.device, batch_size: int
) -> tuple[T, torch.device, int]:
    """Call ``run(device, batch_size)``; on CUDA OOM halve the batch, then fall back to CPU.

    Returns:
        The result, and the device and batch size that produced it.
    """
    while True:
        try:
            return run(device, batch_size), device, batch_size
        except RuntimeError as exc:
            if device.type != "cuda" or not _is_oom(exc):
                raise
            torch.cuda.empty_cache()
            if batch_size > 1:
                batch_size = max(1, batch_size // 2)
                logger.warning(
                    "CUDA out of memory: retrying with %d window(s) per batch", batch_size
                )
            else:
                logger.warning("CUDA out of memory with one window per batch: retrying on CPU")
                device = torch.device("cpu")
