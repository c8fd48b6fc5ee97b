"""The MRML adapter: the core's studies and results as Slicer nodes, and back.

This package sits between the Slicer-free core (:mod:`BreastAIAssistantLib`) and the Slicer
module (``BreastAIAssistant.py``). It imports only ``slicer``'s MRML classes, ``vtk``, numpy,
SimpleITK and the core -- never ``qt``, ``ctk`` or ``slicer.app`` -- so that it runs both inside
Slicer and with the ``slicer-core`` wheel in plain Python, where it is tested against a real
``vtkMRMLScene`` (``Testing/test_mrml_*.py``).

Modules, one concept each:

* :mod:`.geometry` -- LPS <-> RAS and SimpleITK <-> volume-node geometry (the only place);
* :mod:`.scene` -- a scene with Slicer's logics attached, for use outside Slicer;
* :mod:`.study` -- DCE studies from volume sequences or ordered volume nodes; study folders;
* :mod:`.volumes` -- volume nodes from images, the heat colour table and Grad-CAM node;
* :mod:`.segmentation` -- the "Breast" + "Lesion k" segmentation node and reading it back;
* :mod:`.lesions` -- diameter lines, lesion table, curve plot, jumping to a lesion;
* :mod:`.remeasure` -- measurements again from edited segments;
* :mod:`.results` -- a whole result as nodes (:func:`show_results`) and its updates;
* :mod:`.export` -- ``.seg.nrrd``, NIfTI, DICOM SEG, CSV and report exports via the core;
* :mod:`.process` -- the analysis process's command line and progress lines (no Slicer needed);
* :mod:`.rendering` -- offscreen slice views with Slicer's displayable managers.

Import the submodules directly (``from BreastAIAssistantMRML.results import show_results``);
this package file imports nothing, so :mod:`.process` works where ``slicer`` is not installed.
"""

from __future__ import annotations
