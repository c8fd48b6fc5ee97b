"""Building blocks of classic single-frame DICOM MR images.

File meta and SOP Common (:func:`new_dataset`), Image Plane (:func:`set_plane`), Image Pixel
(:func:`set_pixels`), rescale (:class:`Rescale`, :func:`choose_rescale`, :func:`set_rescale`),
equipment and MR Image attributes (:class:`MRProtocol`, :func:`set_mr_protocol`), DICOM number,
date and time strings, and atomic saving (:func:`save_atomic`). These pieces know nothing about
studies: :mod:`BreastAIAssistantLib.io.dicom_write` puts them together into whole series, and the
reader tests use them to write deliberately odd files.

Geometry follows SimpleITK (and DICOM patient coordinates, LPS): a :class:`StackGeometry` holds
the ``origin`` of voxel ``(0, 0, 0)``, the ``spacing`` ``(x, y, z)`` in mm and a row-major 3x3
``direction`` whose columns are the i (along a row), j (down a column) and k (slice) axes. Slice
``k`` is written with

* ``ImagePositionPatient`` = physical point of voxel ``(0, 0, k)`` = ``origin + k * z * k_axis``;
* ``ImageOrientationPatient`` = ``(i_axis, j_axis)``;
* ``PixelSpacing`` = ``[y, x]`` (row spacing first, as DICOM orders it);
* ``SliceThickness`` = ``SpacingBetweenSlices`` = ``z`` (contiguous slices);
* ``SliceLocation`` = projection of the position on the DICOM normal ``i_axis x j_axis``.

A reader stacks slices along that normal, so a left-handed direction (``k_axis`` opposite to the
normal) comes back with its slices in reverse order; :meth:`StackGeometry.right_handed` tells.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage
from pydicom.valuerep import format_number_as_ds

from BreastAIAssistantLib import __version__
from BreastAIAssistantLib.errors import OutputError

#: Row-major identity direction.
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
#: ImplementationVersionName of the files this package writes (SH, at most 16 characters).
IMPLEMENTATION_VERSION = f"BAA_{__version__}"[:16]
#: Largest stored value of the unsigned 16-bit pixels written here.
MAX_STORED = 65535
#: Gyromagnetic ratio of 1H in MHz/T (for ImagingFrequency).
PROTON_MHZ_PER_T = 42.577478518


def ds_str(value: float) -> str:
    """A float as a DICOM decimal string (DS, at most 16 characters)."""
    return format_number_as_ds(float(value))


def ds_list(values: Sequence[float]) -> list[str]:
    """Several floats as DS values (for multi-valued attributes)."""
    return [ds_str(v) for v in values]


def tm(seconds: float) -> str:
    """DICOM TM ``HHMMSS.ffffff`` of a time in seconds after midnight (wraps at 24 h)."""
    micro = round(seconds * 1e6) % (86400 * 10**6)
    hours, rest = divmod(micro, 3600 * 10**6)
    minutes, rest = divmod(rest, 60 * 10**6)
    secs, micro = divmod(rest, 10**6)
    return f"{hours:02d}{minutes:02d}{secs:02d}.{micro:06d}"


def da_tm(when: datetime.datetime) -> tuple[str, str]:
    """DICOM DA ``YYYYMMDD`` and TM ``HHMMSS.ffffff`` of a date and time."""
    return when.strftime("%Y%m%d"), when.strftime("%H%M%S.%f")


@dataclass(frozen=True)
class StackGeometry:
    """Voxel grid of a stack of parallel slices (SimpleITK conventions, LPS, mm)."""

    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    direction: tuple[float, ...] = IDENTITY

    @classmethod
    def from_image(cls, image: sitk.Image) -> StackGeometry:
        """The geometry of a 3-D image.

        Raises:
            ValueError: the image is not 3-D.
        """
        if image.GetDimension() != 3:
            raise ValueError(f"a DICOM slice stack needs a 3-D image, got {image.GetDimension()}-D")
        x, y, z = (float(v) for v in image.GetOrigin())
        sx, sy, sz = (float(v) for v in image.GetSpacing())
        return cls((x, y, z), (sx, sy, sz), tuple(float(v) for v in image.GetDirection()))

    @property
    def axes(self) -> np.ndarray:
        """3x3 matrix whose columns are the i, j, k axes."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def normal(self) -> np.ndarray:
        """The DICOM slice normal, ``i_axis x j_axis``."""
        axes = self.axes
        return np.cross(axes[:, 0], axes[:, 1])

    def slice_position(self, k: int) -> np.ndarray:
        """LPS position of voxel ``(0, 0, k)``."""
        return np.asarray(self.origin, dtype=float) + k * self.spacing[2] * self.axes[:, 2]

    def orthonormal(self, tolerance: float = 1e-4) -> bool:
        """Whether the direction's columns are unit vectors at right angles."""
        axes = self.axes
        return bool(np.allclose(axes.T @ axes, np.eye(3), rtol=0.0, atol=tolerance))

    def right_handed(self, tolerance: float = 1e-4) -> bool:
        """Whether the k axis is the DICOM normal ``i_axis x j_axis`` (within ``tolerance``)."""
        return bool(np.allclose(self.axes[:, 2], self.normal, rtol=0.0, atol=tolerance))


def new_dataset(
    sop_instance_uid: str,
    sop_class_uid: str = MRImageStorage,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """An empty dataset with its file meta information and SOP Common identifiers."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    return ds


def set_plane(ds: Dataset, geometry: StackGeometry, k: int) -> None:
    """Set the Image Plane module of slice ``k`` (see the module docstring)."""
    axes = geometry.axes
    position = geometry.slice_position(k)
    ds.ImagePositionPatient = ds_list(position)
    ds.ImageOrientationPatient = ds_list(np.concatenate([axes[:, 0], axes[:, 1]]))
    ds.PixelSpacing = ds_list([geometry.spacing[1], geometry.spacing[0]])
    ds.SliceThickness = ds_str(geometry.spacing[2])
    ds.SpacingBetweenSlices = ds_str(geometry.spacing[2])
    ds.SliceLocation = ds_str(float(np.dot(position, geometry.normal)))


def set_pixels(ds: Dataset, stored_yx: np.ndarray, bits_stored: int = 16) -> None:
    """Set the Image Pixel module for one unsigned 16-bit MONOCHROME2 frame.

    Args:
        ds: Dataset to fill.
        stored_yx: Stored values ``(rows, columns)``; must fit in ``bits_stored`` bits.
        bits_stored: BitsStored (HighBit is one less).

    Raises:
        ValueError: a value is negative or needs more than ``bits_stored`` bits.
    """
    values = np.asarray(stored_yx)
    if values.ndim != 2:
        raise ValueError(f"one frame must be 2-D (rows, columns), got shape {values.shape}")
    if values.size and (values.min() < 0 or values.max() >= 2**bits_stored):
        raise ValueError(f"stored values must be in [0, {2**bits_stored - 1}]")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(values, dtype="<u2").tobytes()
    ds["PixelData"].VR = "OW"


def set_rescale(ds: Dataset, slope: float, intercept: float) -> None:
    """Set RescaleSlope/RescaleIntercept (modality value = stored * slope + intercept).

    The classic MR Image IOD has no Modality LUT module, but scanners and readers use these two
    attributes for MR all the same (validators warn of a "Standard Extended SOP Class"); the
    identity (slope 1, intercept 0) is therefore not written at all.
    """
    if float(slope) == 1.0 and float(intercept) == 0.0:
        return
    ds.RescaleSlope = ds_str(slope)
    ds.RescaleIntercept = ds_str(intercept)


@dataclass(frozen=True)
class MRProtocol:
    """Acquisition and equipment attributes written into every image.

    The defaults describe a fat-suppressed 3-D spoiled gradient-echo T1 DCE sequence at 3 T, as
    typical breast DCE protocols use, on clearly labelled synthetic equipment.

    Attributes:
        repetition_time_ms: RepetitionTime.
        echo_time_ms: EchoTime.
        flip_angle_deg: FlipAngle.
        echo_train_length: EchoTrainLength.
        field_strength_t: MagneticFieldStrength; ImagingFrequency follows for 1H.
        scanning_sequence: ScanningSequence values (GR: gradient recalled).
        sequence_variant: SequenceVariant values (SP: spoiled, SS: steady state).
        scan_options: ScanOptions values (FS: fat saturation).
        acquisition_type: MRAcquisitionType (``2D`` or ``3D``).
        patient_position: PatientPosition (FFP: feet first prone, usual for breast MRI).
        body_part: BodyPartExamined.
        image_laterality: ImageLaterality: ``B`` (both breasts), ``L``, ``R`` or ``U``.
        contrast_agent: ContrastBolusAgent of post-contrast images (empty: not written).
        manufacturer: Manufacturer.
        model: ManufacturerModelName.
        software: SoftwareVersions.
        comment: ImageComments of every image (empty: not written).
    """

    repetition_time_ms: float = 4.5
    echo_time_ms: float = 2.1
    flip_angle_deg: float = 12.0
    echo_train_length: int = 1
    field_strength_t: float = 3.0
    scanning_sequence: tuple[str, ...] = ("GR",)
    sequence_variant: tuple[str, ...] = ("SP", "SS")
    scan_options: tuple[str, ...] = ("FS",)
    acquisition_type: str = "3D"
    patient_position: str = "FFP"
    body_part: str = "BREAST"
    image_laterality: str = "B"
    contrast_agent: str = "gadolinium (synthetic)"
    manufacturer: str = "BreastAIAssistant synthetic phantom"
    model: str = "BreastAIAssistant"
    software: str = f"BreastAIAssistant {__version__}"
    comment: str = "Synthetic image made by BreastAIAssistant; not a patient, not for clinical use"


def set_mr_protocol(ds: Dataset, protocol: MRProtocol, post_contrast: bool = False) -> None:
    """Set the equipment, MR Image and Contrast/Bolus attributes of ``protocol``.

    Args:
        ds: Dataset to fill.
        protocol: The acquisition and equipment description.
        post_contrast: Whether the image was acquired after contrast injection (then
            ContrastBolusAgent is written when the protocol names one).
    """
    ds.Manufacturer = protocol.manufacturer
    ds.ManufacturerModelName = protocol.model
    ds.SoftwareVersions = protocol.software
    ds.ScanningSequence = list(protocol.scanning_sequence)
    ds.SequenceVariant = list(protocol.sequence_variant)
    ds.ScanOptions = list(protocol.scan_options)
    ds.MRAcquisitionType = protocol.acquisition_type
    ds.RepetitionTime = ds_str(protocol.repetition_time_ms)
    ds.EchoTime = ds_str(protocol.echo_time_ms)
    ds.EchoTrainLength = int(protocol.echo_train_length)
    ds.FlipAngle = ds_str(protocol.flip_angle_deg)
    ds.NumberOfAverages = "1"
    ds.ImagedNucleus = "1H"
    ds.MagneticFieldStrength = ds_str(protocol.field_strength_t)
    ds.ImagingFrequency = ds_str(round(PROTON_MHZ_PER_T * protocol.field_strength_t, 6))
    ds.EchoNumbers = "1"
    ds.AngioFlag = "N"
    ds.PatientPosition = protocol.patient_position
    ds.BodyPartExamined = protocol.body_part
    if protocol.image_laterality:
        ds.ImageLaterality = protocol.image_laterality
        if protocol.image_laterality in ("L", "R"):
            ds.Laterality = protocol.image_laterality
    if post_contrast and protocol.contrast_agent:
        ds.ContrastBolusAgent = protocol.contrast_agent
    if protocol.comment:
        ds.ImageComments = protocol.comment


def safe_name(text: str, limit: int = 48) -> str:
    """``text`` reduced to letters, digits, ``.``, ``-`` and ``_`` for a file or folder name."""
    kept = "".join(c if c.isascii() and (c.isalnum() or c in ".-") else "_" for c in text)
    parts = [p for p in kept.split("_") if p]
    name = "_".join(parts)[:limit].strip("._-")
    return name or "series"


@dataclass(frozen=True)
class Rescale:
    """Linear map from stored 16-bit values to modality values (``stored * slope + intercept``)."""

    slope: float = 1.0
    intercept: float = 0.0

    def to_stored(self, values: np.ndarray) -> np.ndarray:
        """Stored ``uint16`` values nearest to ``values``."""
        scaled = (np.asarray(values, dtype=np.float64) - self.intercept) / self.slope
        return np.clip(np.rint(scaled), 0, MAX_STORED).astype(np.uint16)


def choose_rescale(arrays: Sequence[np.ndarray]) -> Rescale:
    """Slope and intercept that store ``arrays`` in unsigned 16 bits within half a slope step.

    Whole numbers spanning at most 65535 are stored exactly with slope 1 (intercept 0 when they
    fit as they are, else their minimum). Otherwise the intercept is 0 for non-negative data (so
    that stored values stay proportional to the signal, for tools that ignore the rescale) and
    the minimum for data with negative values; the slope is the range over 65534 rounded up to
    four significant digits (a readable DS value; the spare step absorbs rounding). Both are the
    values that their DS strings read back as.
    """
    lo = min(float(np.min(a)) for a in arrays)
    hi = max(float(np.max(a)) for a in arrays)
    if hi - lo <= MAX_STORED and all(np.array_equal(a, np.rint(a)) for a in arrays):
        return Rescale(1.0, 0.0 if lo >= 0 and hi <= MAX_STORED else lo)
    intercept = 0.0 if lo >= 0 else float(ds_str(lo))
    span = hi - intercept
    return Rescale(_round_up(span / (MAX_STORED - 1)) if span > 0 else 1.0, intercept)


def _round_up(value: float, digits: int = 4) -> float:
    """``value`` (> 0) rounded up to ``digits`` significant digits."""
    unit = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return float(f"{math.ceil(value / unit) * unit:.{digits}g}")


def save_atomic(ds: Dataset, path: Path, overwrite: bool = False) -> None:
    """Write ``ds`` as a DICOM file: to a hidden temporary name beside ``path``, then rename.

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is False.
    """
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; choose an empty folder or ask to overwrite")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.save_as(temporary, enforce_file_format=True)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
