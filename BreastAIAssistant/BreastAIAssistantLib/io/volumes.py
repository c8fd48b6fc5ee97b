"""Reading and writing single volumes, and atomic output files.

All outputs go through :func:`atomic_path`: the data is written to a temporary name in the target
folder and renamed into place only when complete, so an interrupted run never leaves a half-written
file under the final name, and an existing input is never overwritten by mistake.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from BreastAIAssistantLib.errors import OutputError, ReaderError

#: File name suffixes of single-volume formats this project reads.
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Suffixes it writes: single-file formats only, so that an atomic rename moves the whole volume.
WRITE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def volume_suffix(path: str | os.PathLike[str]) -> str | None:
    """The volume suffix of ``path`` (``".nii.gz"`` counts as one), or ``None``."""
    name = Path(path).name.lower()
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def strip_volume_suffix(path: str | os.PathLike[str]) -> str:
    """File name without its volume suffix (``case_0001.nii.gz`` -> ``case_0001``)."""
    name = Path(path).name
    suffix = volume_suffix(name)
    return name[: -len(suffix)] if suffix else name


def read_volume(path: str | os.PathLike[str]) -> sitk.Image:
    """Read one volume file with SimpleITK.

    Raises:
        ReaderError: the file is missing or SimpleITK cannot read it.
    """
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"no such file: {path}")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise ReaderError(f"cannot read {path} as an image volume: {first}") from exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], protect: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The temporary name keeps the final suffix (SimpleITK picks the writer from it). On error the
    temporary file is removed and ``path`` is untouched.

    Args:
        path: Final output path. Its folder is created if needed.
        protect: Input paths that must never be overwritten.

    Raises:
        OutputError: ``path`` is one of the protected inputs.
    """
    path = Path(path)
    resolved = path.resolve()
    for p in protect:
        if Path(p).resolve() == resolved:
            raise OutputError(f"refusing to overwrite the input file {p}; choose another output")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = volume_suffix(path) or path.suffix
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes owner-only files; give the usual umask permissions
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_volume(
    image: sitk.Image,
    path: str | os.PathLike[str],
    compress: bool = True,
    protect: tuple[Path, ...] = (),
) -> Path:
    """Write ``image`` atomically; the format follows the suffix (NIfTI, NRRD, MetaImage)."""
    path = Path(path)
    if volume_suffix(path) not in WRITE_SUFFIXES:
        raise OutputError(f"cannot write {path.name}: use one of {', '.join(WRITE_SUFFIXES)}")
    with atomic_path(path, protect) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
    return path


def write_json(data: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` as indented JSON atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
