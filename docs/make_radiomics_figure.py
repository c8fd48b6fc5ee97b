"""Draw docs/radiomics_roc.png from a ``breast-ai radiomics-model`` output folder: for each
strategy (and modality) the ROC of its best classifier, from the held-out (out-of-fold)
predictions in ``predictions.csv``.

Run after the README's worked example::

    .venv/bin/python docs/make_radiomics_figure.py radiomics-model docs/radiomics_roc.png
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from BreastAIAssistantLib.classify.metrics import plot_roc


def main(model_dir: str, out: str) -> None:
    folder = Path(model_dir)
    with (folder / "results.csv").open(newline="") as handle:
        results = list(csv.DictReader(handle))
    best: dict[tuple[str, str], dict[str, str]] = {}
    for row in results:  # rows are sorted by AUC: the first per (strategy, modality) is the best
        best.setdefault((row["strategy"], row["modality"]), row)
    with (folder / "predictions.csv").open(newline="") as handle:
        predictions = list(csv.DictReader(handle))
    labels = [int(p["malignant"]) for p in predictions]
    curves = {}
    for (strategy, modality), row in best.items():
        column = f"{strategy}/{modality}/{row['classifier']}"
        name = f"{strategy.replace('_', ' ')} {modality} ({row['classifier'].replace('_', ' ')})"
        curves[name] = (labels, [float(p[column]) for p in predictions])
    plot_roc(curves, Path(out), title="Radiomics on the phantom cohort (5-fold CV)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
