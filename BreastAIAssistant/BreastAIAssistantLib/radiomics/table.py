"""Radiomics feature tables: one row per case, read from and written to CSV.

CSV layout: the first column is ``case_id``; every other column is either a *feature* (numeric,
empty cells are missing values) or an *extra* column kept as text (labels, clinical data,
PyRadiomics diagnostics).

Feature columns follow the names written by :mod:`BreastAIAssistantLib.radiomics.features`,
``<image>_<region>_<family>_<feature>`` (e.g. ``sub1_lesion_glcm_Contrast``,
``pre_shell_wavelet-LLH-glcm_Idm``), or ``deep_<region>_<model>_<k>`` for deep features, optionally
prefixed by a modality and a colon (``mri:sub1_lesion_firstorder_Mean``, ``us:image_lesion_...``).
A column is a feature when one of its underscore-separated parts is a radiomics key (a PyRadiomics
family such as ``glcm``, possibly after a filter prefix such as ``wavelet-LLH-``, or the word
``deep``) *and* all its cells parse as numbers or are empty; anything else goes to ``extra``.
The modality groups columns for per-modality models and multimodal fusion
(:mod:`BreastAIAssistantLib.radiomics.modelling`); unprefixed columns belong to modality ``all``.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from BreastAIAssistantLib.errors import BreastAIError
from BreastAIAssistantLib.io.volumes import atomic_path
from BreastAIAssistantLib.radiomics.settings import FAMILIES

logger = logging.getLogger(__name__)

#: Name parts that mark a radiomics feature column (compared case-insensitively).
RADIOMICS_KEYS = frozenset({*(f.lower() for f in FAMILIES), "deep"})
#: Cell texts read as a missing value.
MISSING = frozenset({"", "na", "n/a", "nan", "none", "null"})
#: Label texts accepted by :func:`labels` (lower case) and their class.
LABEL_VALUES = {
    "0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, "benign": 0, "malignant": 1,
    "negative": 0, "positive": 1,
}


@dataclass
class FeatureTable:
    """Radiomics features of a cohort.

    Attributes:
        case_ids: One identifier per case (row), unique.
        columns: Feature names, one per column of ``values``.
        values: ``(n_cases, n_features)`` float64; NaN marks a missing value.
        extra: Non-feature columns (labels, clinical data) as text, one list per column, in
            case order.
    """

    case_ids: list[str]
    columns: list[str]
    values: np.ndarray
    extra: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.shape != (len(self.case_ids), len(self.columns)):
            raise ValueError(f"values have shape {self.values.shape}; expected "
                             f"({len(self.case_ids)}, {len(self.columns)})")
        for name, cells in self.extra.items():
            if len(cells) != len(self.case_ids):
                raise ValueError(f"extra column {name!r} has {len(cells)} cells, expected "
                                 f"{len(self.case_ids)}")

    def column_values(self, names: Sequence[str]) -> np.ndarray:
        """The ``(n_cases, len(names))`` sub-matrix of the named feature columns, in that order."""
        index = {name: i for i, name in enumerate(self.columns)}
        missing = [n for n in names if n not in index]
        if missing:
            raise BreastAIError(f"feature column(s) not in the table: {', '.join(missing[:5])}")
        return self.values[:, [index[n] for n in names]]


def modality_of(column: str) -> str:
    """The modality of a feature column: the text before ``':'``, or ``'all'`` without one."""
    head, sep, _ = column.partition(":")
    return head if sep else "all"


def restrict_modalities(table: FeatureTable, modalities: Sequence[str]) -> FeatureTable:
    """The table with only the feature columns of ``modalities``.

    Raises:
        BreastAIError: a modality the table does not have.
    """
    present = {modality_of(c) for c in table.columns}
    unknown = sorted(set(modalities) - present)
    if unknown:
        raise BreastAIError(f"modality {', '.join(unknown)} not in the feature table; it has "
                            f"{', '.join(sorted(present))}")
    keep = [i for i, c in enumerate(table.columns) if modality_of(c) in set(modalities)]
    return FeatureTable(list(table.case_ids), [table.columns[i] for i in keep],
                        table.values[:, keep], dict(table.extra))


def is_radiomics_name(column: str) -> bool:
    """True when an underscore-separated part of the name (after the modality) is a radiomics key.

    A part counts when it is a key (``glcm``) or ends with ``-<key>`` (``wavelet-LLH-glcm``).
    """
    name = column.partition(":")[2] if ":" in column else column
    for part in name.lower().split("_"):
        if part in RADIOMICS_KEYS or ("-" in part and part.rsplit("-", 1)[1] in RADIOMICS_KEYS):
            return True
    return False


def _parse(cell: str) -> float | None:
    """The cell as a float (NaN when missing), or None when it is not a number."""
    text = cell.strip()
    if text.lower() in MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def read_features_csv(path: str | os.PathLike[str], label: str | None = None) -> FeatureTable:
    """Read a feature CSV (see the module docstring for the layout).

    Args:
        path: The CSV file; its first column must be ``case_id``.
        label: Optional label column: it must exist and is always kept in ``extra`` as text.

    Returns:
        The table; non-finite numbers (``inf``) are stored as NaN.

    Raises:
        BreastAIError: The file cannot be read, has no ``case_id`` first column, ragged rows,
            duplicate case ids, or lacks the ``label`` column.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BreastAIError(f"cannot read the feature table {path}: {exc}") from exc
    if not rows or rows[0][0].strip() != "case_id":
        raise BreastAIError(f"{path}: the first column must be 'case_id' (one row per case)")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header):
        raise BreastAIError(f"{path}: duplicate column names in the header")
    body = rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise BreastAIError(f"{path}, line {number}: {len(row)} cells but {len(header)} "
                                "columns in the header")
    case_ids = [row[0].strip() for row in body]
    duplicates = sorted({c for c in case_ids if case_ids.count(c) > 1})
    if duplicates:
        raise BreastAIError(f"{path}: duplicate case_id values: {', '.join(duplicates[:5])}")
    if label is not None and label not in header[1:]:
        raise BreastAIError(f"{path} has no column {label!r}; columns that are not features: "
                            f"{', '.join(h for h in header[1:] if not is_radiomics_name(h))}")
    columns: list[str] = []
    data: list[list[float]] = []
    extra: dict[str, list[str]] = {}
    for j, name in enumerate(header[1:], start=1):
        cells = [row[j] for row in body]
        parsed = [_parse(cell) for cell in cells] if name != label else [None]
        if is_radiomics_name(name) and all(v is not None for v in parsed):
            columns.append(name)
            data.append([float(v) for v in parsed])  # type: ignore[arg-type]
        else:
            extra[name] = [cell.strip() for cell in cells]
    values = np.array(data, dtype=np.float64).T.reshape(len(case_ids), len(columns))
    values[~np.isfinite(values)] = np.nan
    logger.info("read %d cases x %d features (+%d other columns) from %s", len(case_ids),
                len(columns), len(extra), path)
    return FeatureTable(case_ids, columns, values, extra)


def _format(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


def write_features_csv(table: FeatureTable, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` as CSV atomically: ``case_id``, the features (full precision, missing
    values empty), then the extra columns."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", *table.columns, *table.extra])
        for i, case in enumerate(table.case_ids):
            writer.writerow([case, *(_format(v) for v in table.values[i]),
                             *(cells[i] for cells in table.extra.values())])
    return path


def labels(table: FeatureTable, column: str) -> np.ndarray:
    """The binary labels in ``column`` as an int array of 0/1.

    Accepted (case-insensitive): ``0``/``1``, ``false``/``true``, ``benign``/``malignant``
    (malignant = 1), ``negative``/``positive`` (positive = 1).

    Raises:
        BreastAIError: The column does not exist, or a cell is empty or another value.
    """
    if column in table.extra:
        cells = table.extra[column]
    elif column in table.columns:
        cells = [_format(v) for v in table.values[:, table.columns.index(column)]]
    else:
        raise BreastAIError(f"no label column {column!r} in the feature table; available "
                            f"non-feature columns: {', '.join(table.extra) or 'none'}")
    out = np.empty(len(cells), dtype=int)
    for i, cell in enumerate(cells):
        value = LABEL_VALUES.get(cell.strip().lower())
        if value is None:
            raise BreastAIError(
                f"label {cell!r} of case {table.case_ids[i]!r} in column {column!r} is not "
                "binary; use 0/1, true/false, benign/malignant or negative/positive")
        out[i] = value
    return out
