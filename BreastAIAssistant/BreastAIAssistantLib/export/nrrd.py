"""A small, exact NRRD writer and reader for 3-D label volumes (optionally with a list axis).

Written here rather than through SimpleITK because a Slicer segmentation needs things ITK's
writer does not give control over: ``key:=value`` fields in a fixed order, a leading ``list`` axis
(``kinds: list domain domain domain``, ``space directions: none (...) (...) (...)``) for
several label layers, and full-precision geometry. The format follows the NRRD specification
(http://teem.sourceforge.net/nrrd/format.html):

* ``space: left-posterior-superior`` (LPS, as SimpleITK and DICOM);
* ``space directions``: one vector per spatial axis = direction column x spacing;
* ``space origin``: the centre of voxel ``(0, 0, 0)``;
* data: raw little-endian samples, fastest axis first (the list axis, then x, y, z), gzip'ed.

Floats are written with ``repr`` (shortest exact round trip), so geometry read back is the
geometry written, bit for bit. The reader handles what this writer and Slicer write (attached
data, raw or gzip, LPS or RAS space, 3-D or list + 3-D); anything else raises
:class:`~BreastAIAssistantLib.errors.ReaderError`.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from BreastAIAssistantLib.errors import ReaderError
from BreastAIAssistantLib.io.volumes import atomic_path

MAGIC = "NRRD0004"
_TYPES = {
    "uint8": "unsigned char",
    "int8": "signed char",
    "uint16": "unsigned short",
    "int16": "short",
    "uint32": "unsigned int",
    "int32": "int",
}
_TYPE_ALIASES = {
    np.dtype(np.uint8): ("uchar", "unsigned char", "uint8", "uint8_t"),
    np.dtype(np.int8): ("signed char", "int8", "int8_t"),
    np.dtype(np.uint16): ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    np.dtype(np.int16): ("short", "short int", "signed short", "int16", "int16_t"),
    np.dtype(np.uint32): ("uint", "unsigned int", "uint32", "uint32_t"),
    np.dtype(np.int32): ("int", "signed int", "int32", "int32_t"),
}
_LPS = "left-posterior-superior"
_RAS = "right-anterior-superior"


@dataclass(frozen=True)
class NrrdVolume:
    """A 3-D volume (optionally with a leading list axis) and its LPS geometry.

    Attributes:
        array: ``(z, y, x)`` samples, or ``(z, y, x, n)`` with a list axis of ``n`` entries.
        origin: LPS position (mm) of voxel ``(0, 0, 0)``.
        spacing: ``(x, y, z)`` spacing in mm.
        direction: Row-major 3x3 direction (columns: i, j, k axes), as SimpleITK.
        fields: The ``key:=value`` pairs, in file order.
    """

    array: np.ndarray
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]
    fields: Mapping[str, str] = field(default_factory=dict)


def _vector(values: np.ndarray) -> str:
    return "(" + ",".join(repr(float(v)) for v in values) + ")"


def header_text(volume: NrrdVolume, compress: bool = True) -> str:
    """The NRRD header (ending with the blank line) of ``volume``."""
    array = volume.array
    listed = array.ndim == 4
    dtype = np.dtype(array.dtype)
    if dtype.name not in _TYPES:
        raise ValueError(f"cannot write NRRD samples of type {dtype}")
    axes = np.asarray(volume.direction, dtype=float).reshape(3, 3) * np.asarray(volume.spacing)
    sizes = [array.shape[2], array.shape[1], array.shape[0]]
    directions = [_vector(axes[:, axis]) for axis in range(3)]
    kinds = ["domain"] * 3
    if listed:
        sizes.insert(0, array.shape[3])
        directions.insert(0, "none")
        kinds.insert(0, "list")
    lines = [
        MAGIC,
        "# Complete NRRD file format specification at:",
        "# http://teem.sourceforge.net/nrrd/format.html",
        f"type: {_TYPES[dtype.name]}",
        f"dimension: {len(sizes)}",
        f"space: {_LPS}",
        "sizes: " + " ".join(str(int(s)) for s in sizes),
        "space directions: " + " ".join(directions),
        "kinds: " + " ".join(kinds),
    ]
    if dtype.itemsize > 1:
        lines.append("endian: little")
    lines.append(f"encoding: {'gzip' if compress else 'raw'}")
    lines.append("space origin: " + _vector(np.asarray(volume.origin)))
    for key, value in volume.fields.items():
        if any(c in f"{key}{value}" for c in "\r\n") or ":=" in key:
            raise ValueError(f"NRRD key/value {key!r} must be one line without ':=' in the key")
        lines.append(f"{key}:={value}")
    return "\n".join(lines) + "\n\n"


def write_nrrd(volume: NrrdVolume, path: str | os.PathLike[str], compress: bool = True) -> Path:
    """Write ``volume`` as one attached-data NRRD file, atomically.

    Returns:
        The path written.
    """
    path = Path(path)
    data = np.ascontiguousarray(volume.array)
    data = data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
    header = header_text(volume, compress).encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(header)
            handle.write(gzip.compress(data, compresslevel=6) if compress else data)
    return path


def _parse_vector(text: str) -> np.ndarray:
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError(f"not a NRRD vector: {text!r}")
    return np.array([float(v) for v in text[1:-1].split(",")], dtype=float)


def _read_header(raw: bytes, path: Path) -> tuple[dict[str, str], dict[str, str], int]:
    """Basic fields, key/value pairs and the offset of the data."""
    end = raw.find(b"\n\n")
    if not raw.startswith(b"NRRD") or end < 0:
        raise ReaderError(f"{path} is not a NRRD file (no NRRD magic or no end of header)")
    basic: dict[str, str] = {}
    pairs: dict[str, str] = {}
    for line in raw[:end].decode("utf-8", errors="replace").splitlines()[1:]:
        if not line or line.startswith("#"):
            continue
        if ":=" in line:
            key, value = line.split(":=", 1)
            pairs[key] = value
        elif ": " in line:
            key, value = line.split(": ", 1)
            basic[key.strip().lower()] = value.strip()
        else:
            raise ReaderError(f"{path}: cannot parse the NRRD header line {line!r}")
    return basic, pairs, end + 2


def _dtype(basic: Mapping[str, str], path: Path) -> np.dtype:
    name = basic.get("type", "").lower()
    for dtype, aliases in _TYPE_ALIASES.items():
        if name in aliases:
            big = basic.get("endian", "little").lower() == "big"
            return dtype.newbyteorder(">" if big else "<")
    raise ReaderError(f"{path}: unsupported NRRD sample type {name!r} (integer labels expected)")


def read_nrrd(path: str | os.PathLike[str]) -> NrrdVolume:
    """Read a NRRD file written by :func:`write_nrrd` or by Slicer (see the module docstring).

    Raises:
        ReaderError: missing file, unsupported variant, or data that do not match the header.
    """
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"no such file: {path}")
    raw = path.read_bytes()
    basic, pairs, offset = _read_header(raw, path)
    for unsupported in ("data file", "datafile", "line skip", "byte skip"):
        if unsupported in basic:
            raise ReaderError(f"{path}: NRRD field {unsupported!r} is not supported")
    try:
        sizes = [int(s) for s in basic["sizes"].split()]
        kinds = basic.get("kinds", " ".join(["domain"] * len(sizes))).split()
        directions = basic["space directions"].split()
        origin = _parse_vector(basic.get("space origin", "(0,0,0)"))
    except (KeyError, ValueError) as exc:
        raise ReaderError(f"{path}: incomplete NRRD geometry ({exc})") from exc
    listed = len(sizes) == 4 and kinds[0] == "list" and directions[0] == "none"
    if len(sizes) != 3 and not listed:
        raise ReaderError(f"{path}: expected a 3-D NRRD or a list axis + 3-D, got sizes {sizes}")
    axes = np.stack([_parse_vector(d) for d in directions[-3:]], axis=1)
    space = basic.get("space", _LPS).lower()
    if space in (_RAS, "ras"):
        flip = np.array([-1.0, -1.0, 1.0])
        axes, origin = axes * flip[:, None], origin * flip
    elif space not in (_LPS, "lps"):
        raise ReaderError(f"{path}: unsupported NRRD space {space!r}")
    spacing = np.linalg.norm(axes, axis=0)
    direction = axes / spacing
    encoding = basic.get("encoding", "raw").lower()
    body = raw[offset:]
    if encoding in ("gzip", "gz"):
        body = gzip.decompress(body)
    elif encoding != "raw":
        raise ReaderError(f"{path}: unsupported NRRD encoding {encoding!r}")
    dtype = _dtype(basic, path)
    count = int(np.prod(sizes))
    if len(body) != count * dtype.itemsize:
        raise ReaderError(f"{path}: {len(body)} data bytes for {count} samples of {dtype}")
    shape = tuple(reversed(sizes))  # slowest first: z, y, x (, list)
    array = np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return NrrdVolume(
        array=array,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        spacing=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        direction=tuple(float(v) for v in direction.ravel()),
        fields=pairs,
    )
