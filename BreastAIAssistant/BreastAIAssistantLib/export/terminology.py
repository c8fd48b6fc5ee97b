"""Coded terminology of segments: SNOMED CT codes and Slicer's ``TerminologyEntry`` string.

One :class:`Terminology` describes what a segment is the way DICOM SEG does (segmented property
category, type and optional type modifier; optional anatomic region and its modifier); the same
object is written into a Slicer ``.seg.nrrd`` (as the ``TerminologyEntry`` segment tag) and into a
DICOM Segmentation (as the code sequences of the segment description), so that both exports say
the same thing.

**Codes used** (all SNOMED CT, scheme designator ``SCT``):

* whole breast: category *Anatomical Structure* ``123037004`` (as in Slicer's "Segmentation
  category and type - DICOM master list", so that Slicer's terminology selector recognises the
  entry), type *Breast* ``76752008``. The masks cover both breasts, so there is no laterality
  modifier.
* tumour: category *Morphologically Altered Structure* ``49755003``, type *Mass* ``4147007``
  (BI-RADS MRI describes enhancing lesions as masses or non-mass enhancement; a segmentation model
  does not know the histology, so *Neoplasm* ``108369006`` would claim more than it knows), with
  the anatomic region *Breast* ``76752008``.

**Slicer's serialisation** (``vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry``):
seven fields joined by ``~`` -- context name, category, type, type modifier, anatomic context
name, anatomic region, anatomic region modifier -- where each code is
``scheme^value^meaning`` and a missing code is ``^^``. In the ``.seg.nrrd`` header the entry is
one ``key:value|`` pair of the ``SegmentN_Tags`` field.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.coding import Code as DicomCode

#: Terminology context of segment category/type in Slicer (and dcmqi).
SEGMENTATION_CONTEXT = "Segmentation category and type - DICOM master list"
#: Terminology context of anatomic regions in Slicer (and dcmqi).
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
#: Name of the segment tag that holds the serialised terminology entry.
TERMINOLOGY_TAG = "TerminologyEntry"
_FORBIDDEN = ("~", "^", "|", "\n", "\r")


@dataclass(frozen=True)
class Code:
    """One coded concept (DICOM code sequence item).

    Attributes:
        scheme: CodingSchemeDesignator (``"SCT"`` for SNOMED CT, ``"DCM"`` for DICOM).
        value: CodeValue.
        meaning: CodeMeaning.
    """

    scheme: str
    value: str
    meaning: str

    def __post_init__(self) -> None:
        for text in (self.scheme, self.value, self.meaning):
            if any(c in text for c in _FORBIDDEN):
                raise ValueError(
                    f"code text {text!r} must not contain any of ~ ^ | or line breaks "
                    "(Slicer's terminology string uses them as separators)"
                )
        if not self.scheme or not self.value or not self.meaning:
            raise ValueError(f"a code needs a scheme, a value and a meaning, got {self}")

    def to_slicer(self) -> str:
        """``scheme^value^meaning``."""
        return f"{self.scheme}^{self.value}^{self.meaning}"

    def to_dicom(self) -> DicomCode:
        """The pydicom ``Code`` (what highdicom takes)."""
        return DicomCode(value=self.value, scheme_designator=self.scheme, meaning=self.meaning)

    @classmethod
    def from_slicer(cls, text: str) -> Code | None:
        """Parse ``scheme^value^meaning``; ``^^`` (or empty) gives ``None``.

        Raises:
            ValueError: not three ``^``-separated parts.
        """
        if not text or text == "^^":
            return None
        parts = text.split("^")
        if len(parts) != 3:
            raise ValueError(f"a Slicer code must be 'scheme^value^meaning', got {text!r}")
        return cls(*parts)


def _slicer_code(code: Code | None) -> str:
    return code.to_slicer() if code is not None else "^^"


@dataclass(frozen=True)
class Terminology:
    """What a segment represents, in DICOM SEG terms.

    Attributes:
        category: Segmented property category (CID 7150).
        type: Segmented property type.
        type_modifier: Optional modifier of the type (e.g. laterality).
        region: Optional anatomic region the segment lies in.
        region_modifier: Optional modifier of the region.
        context: Slicer terminology context of category and type.
        region_context: Slicer terminology context of the region.
    """

    category: Code
    type: Code
    type_modifier: Code | None = None
    region: Code | None = None
    region_modifier: Code | None = None
    context: str = SEGMENTATION_CONTEXT
    region_context: str = ANATOMIC_CONTEXT

    def to_slicer(self) -> str:
        """Slicer's serialised ``TerminologyEntry`` (seven ``~``-separated fields)."""
        return "~".join(
            [
                self.context,
                _slicer_code(self.category),
                _slicer_code(self.type),
                _slicer_code(self.type_modifier),
                self.region_context,
                _slicer_code(self.region),
                _slicer_code(self.region_modifier),
            ]
        )

    @classmethod
    def from_slicer(cls, text: str) -> Terminology:
        """Parse Slicer's serialised ``TerminologyEntry``.

        Raises:
            ValueError: not seven fields, or no category or type.
        """
        fields = text.split("~")
        if len(fields) != 7:
            raise ValueError(
                f"a Slicer terminology entry has 7 '~'-separated fields, got {len(fields)}: "
                f"{text!r}"
            )
        context, category, type_, modifier, region_context, region, region_modifier = fields
        category_code, type_code = Code.from_slicer(category), Code.from_slicer(type_)
        if category_code is None or type_code is None:
            raise ValueError(f"the terminology entry {text!r} has no category or no type")
        return cls(
            category=category_code,
            type=type_code,
            type_modifier=Code.from_slicer(modifier),
            region=Code.from_slicer(region),
            region_modifier=Code.from_slicer(region_modifier),
            context=context,
            region_context=region_context,
        )


ANATOMICAL_STRUCTURE = Code("SCT", "123037004", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED_STRUCTURE = Code("SCT", "49755003", "Morphologically Altered Structure")
BREAST_CODE = Code("SCT", "76752008", "Breast")
MASS_CODE = Code("SCT", "4147007", "Mass")

#: The whole-breast mask (both breasts).
BREAST = Terminology(category=ANATOMICAL_STRUCTURE, type=BREAST_CODE)
#: A tumour (one lesion instance) in the breast.
BREAST_MASS = Terminology(
    category=MORPHOLOGICALLY_ALTERED_STRUCTURE, type=MASS_CODE, region=BREAST_CODE
)
