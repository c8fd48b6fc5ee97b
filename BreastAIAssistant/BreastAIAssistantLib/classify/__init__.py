"""Lesion classifiers: crops, predictors, subtype rule and classification metrics."""
