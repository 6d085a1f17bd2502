"""Classifier registry, per-feature-set pipelines, protocols (honest / paper) and CV."""
