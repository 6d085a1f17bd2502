"""Metrics with confidence intervals, DeLong, calibration, decision curves, SHAP, Table 1."""
