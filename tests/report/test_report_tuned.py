"""The report says when deep features were fine-tuned and what that withholds."""

from __future__ import annotations

import json
import shutil

from workbench.report import build_report


def test_report_warns_about_fine_tuned_deep_features(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    manifest = json.loads((run / "run_manifest.json").read_text())
    weights = manifest.get("deep_weights") or {}
    label = (weights.get("label") or "ImageNet weights") + \
        "; fine-tuned on the training split (resnet50)"
    manifest["deep_weights"] = {**weights, "label": label}
    (run / "run_manifest.json").write_text(json.dumps(manifest))
    page = build_report(run).read_text(encoding="utf-8")
    assert "cross-validation estimates of feature sets with deep features are not " \
           "reported" in page
    assert "the null audit refuses" in page
