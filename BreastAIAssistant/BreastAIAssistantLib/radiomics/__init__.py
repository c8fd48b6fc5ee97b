"""Radiomics: PyRadiomics feature extraction per lesion and region, cohort extraction, feature
selection, seven classifiers, early and late fusion, and saved radiomics models."""
