"""Metrics with confidence intervals, DeLong, calibration, decision curves, SHAP, Table 1.

Modules, from the bottom up: :mod:`.inputs` (validation of labels, scores and thresholds),
:mod:`.counts` (confusion counts and the rates derived from them), :mod:`.bootstrap`
(percentile bootstrap CIs), :mod:`.delong` (AUC variance, CI and paired test),
:mod:`.metrics` (threshold metrics, Youden's threshold and the metrics table),
:mod:`.calibration`, :mod:`.decision_curve`, :mod:`.explain` (SHAP) and :mod:`.table1`.

Conventions used throughout:

* ``y`` holds the true labels (1 = pCR, 0 = no pCR); ``p`` the predicted probability of pCR.
* A patient is **predicted positive when** ``p >= threshold`` (ties go to the positive class).
* A metric whose denominator is zero is **undefined and returned as NaN**, never an error:
  sensitivity without positive patients, specificity without negative patients, precision
  (PPV) without positive predictions, NPV without negative predictions, F1 when there are
  neither positive patients nor positive predictions. Bootstrap replicates in which the metric
  is undefined are dropped from the percentile interval (their number is reported).
"""
