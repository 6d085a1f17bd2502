"""manifest_stage: run_manifest.json for a run directory built stage by stage (notebooks)."""

import json

import pandas as pd

from workbench.cohort.table import Problem, validate_cohort
from workbench.config import parse_config
from workbench.pipeline import manifest_stage


def test_manifest_records_what_the_run_directory_holds(tmp_path):
    run = tmp_path / "run"
    image = tmp_path / "pre.nii.gz"
    image.write_bytes(b"not really an image")
    df = pd.DataFrame({"patient_id": ["P1", "P2"], "pcr": [1, 0], "image_pre": [str(image)] * 2,
                       "mask": [str(image), None]})
    cohort = validate_cohort(df, name="tiny", phases=("pre",), check_files=False,
                             problems=[Problem("P2", "qc", "no mask")])
    cohort.save(run / "cohort")
    (run / "features").mkdir()
    pd.DataFrame({"rad__pre__original_shape_Elongation": [0.5]}, index=["P1"]).to_parquet(
        run / "features" / "radiomics.parquet")
    pd.DataFrame({"patient_id": ["P2"], "step": ["shape"], "file": [None],
                  "message": ["no mask"]}).to_csv(run / "features" / "radiomics.errors.csv",
                                                   index=False)
    (run / "features" / "deep_weights.json").write_text(json.dumps({"label": "RANDOM"}))
    cfg = parse_config({"name": "tiny", "seed": 7}, source=str(tmp_path / "tiny.yaml"))

    path = manifest_stage(cfg, run, ibsi={"status": "skipped", "reason": "no data"},
                          extra={"stages_seconds": {"cohort": 1.0}})
    man = json.loads(path.read_text())
    assert man["config"]["name"] == "tiny" and man["seed"] == 7
    assert man["cohort"] == {"name": "tiny", "source": "", "patients": 2,
                             "preprocessed": None, "problems": 1}
    assert man["features"] == {"radiomics": {"patients": 1, "columns": 1, "failed": 1}}
    assert man["deep_weights"] == {"label": "RANDOM"}
    assert man["models"] is None and man["audit"] is None
    assert man["ibsi"]["status"] == "skipped"
    assert man["stages_seconds"] == {"cohort": 1.0}
    assert man["inputs"]["P1/image_pre"] and man["inputs"]["P1/mask"]
    assert "P2/mask" not in man["inputs"]
    assert man["inputs"]["config"] is None  # the config file named but absent: hash None
    assert man["config_file"] == str(tmp_path / "tiny.yaml")
