"""Everything a run will read is checked before any work: `config check`, `run`, `extract`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fixtures.images import write_tiny_patient
from workbench.cli import main
from workbench.config import load_config
from workbench.errors import ConfigError
from workbench.pipeline import run_pipeline
from workbench.pipeline.validate import check_run_inputs, require_run_inputs

GOOD_PARAMS = ("version: 1\nsetting: {binWidth: 0.1}\nimageType: {Original: {}}\n"
               "featureClass: {firstorder: }\n")


def write_config(folder: Path, params: str | None = GOOD_PARAMS, **sections) -> Path:
    """A config in ``folder`` with its radiomics parameter file ``params.yaml`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    if params is not None:
        (folder / "params.yaml").write_text(params)
    data = {"name": "t", "cohort": {"format": "synthetic", "path": "raw"},
            "radiomics": {"params": "params.yaml"}, **sections}
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def problems(folder: Path, params: str | None = GOOD_PARAMS, **sections) -> list[str]:
    return check_run_inputs(load_config(write_config(folder, params, **sections)))


def test_a_good_config_has_no_problem(tmp_path):
    assert problems(tmp_path) == []
    (tmp_path / "data.csv").write_text("patient_id\n")
    assert problems(tmp_path, cohort={"format": "manifest", "path": "data.csv"}) == []


@pytest.mark.parametrize("params, key", [
    ("version: 1\nsetting: {binWidth: -0.1}\nimageType: {Original: {}}\n"
     "featureClass: {firstorder: }\n", "key 'setting.binWidth'"),
    ("version: 1\nsetting: {binCount: 0}\nimageType: {Original: {}}\n"
     "featureClass: {firstorder: }\n", "key 'setting.binCount'"),
    ("version: 1\nsetting: {label: 1}\nimageType: {Original: {}}\n"
     "featureClass: {firstorder: }\n", "setting.binWidth / setting.binCount"),
    ("version: 1\nsetting: {binWidth: 0.1}\nimageType: {Wavelets: {}}\n"
     "featureClass: {firstorder: }\n", "imageType.Wavelets"),
    ("version: 1\nsetting: {binWidth: 0.1}\nimageType: {Original: {}}\n"
     "featureClass: {glcmm: }\n", "featureClass.glcmm"),
    ("version: 1\nsetting: {binWidth: 0.1, resampledPixelSpacing: [1, -1, 1]}\n"
     "imageType: {Original: {}}\nfeatureClass: {firstorder: }\n",
     "setting.resampledPixelSpacing"),
    ("version: 1\nsetting: {binWidth: 0.1, resampledPixelSpacing: [1, 1]}\n"
     "imageType: {Original: {}}\nfeatureClass: {firstorder: }\n", "needs 3 spacings"),
    ("version: 1\nsetting: {binWidth: 0.1}\nimageType: {LoG: {}}\n"
     "featureClass: {firstorder: }\n", "imageType.LoG needs sigma"),
    ("version: 1\nsetting: {binWidth: 0.1\n", "not valid YAML"),
])
def test_bad_radiomics_parameters_name_the_file_and_key(tmp_path, params, key):
    found = problems(tmp_path, params)
    assert len(found) == 1 and "\n" not in found[0]
    assert found[0].startswith(str(tmp_path / "params.yaml")) and key in found[0]
    assert "radiomics.params of" in found[0]


def test_missing_paths_name_their_key(tmp_path):
    found = problems(tmp_path, params=None)
    assert found[0].startswith(str(tmp_path / "run.yaml") + ": radiomics.params:")
    assert "not found" in found[0]
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.csv").write_text("x")
    folder, file = str(tmp_path / "folder"), str(tmp_path / "file.csv")
    cases = [({"cohort": {"format": "manifest", "path": "nowhere.csv"}}, "cohort.path",
              "not found"),
             ({"cohort": {"format": "manifest", "path": folder}}, "cohort.path",
              "no manifest.csv"),
             ({"cohort": {"format": "ispy1", "path": file}}, "cohort.path",
              "reads the dataset's root folder"),
             ({"cohort": {"format": "synthetic", "path": file}}, "cohort.path", "a file"),
             ({"deep": {"weights": "weights/missing.h5"}}, "deep.weights", "not found"),
             ({"deep": {"weights": "random", "require_pretrained": True}},
              "deep.require_pretrained", "'random'"),
             ({"cohort": {"format": "synthetic", "path": "raw", "phases": ["t0", "t1", "t2"]},
               "radiomics": {"params": "params.yaml", "phases": ["t0"]}},
              "kinetic.enabled", "lack ['pre', 'early', 'late']"),
             ({"kinetic": {"enabled": False}, "audit": {"feature_set": "kinetic"}},
              "audit.feature_set", "['kinetic']")]
    for i, (sections, key, text) in enumerate(cases):
        found = problems(tmp_path / f"case{i}", **sections)
        assert len(found) == 1, (sections, found)
        assert f"run.yaml: {key}: " in found[0] and text in found[0], found


def test_unknown_network_is_refused_at_load(tmp_path):
    with pytest.raises(ConfigError, match="deep.networks.0: 'resnet5' is not allowed"):
        load_config(write_config(tmp_path, deep={"networks": ["resnet5"]}))


def test_config_check_validates_the_parameter_file(tmp_path, capsys):
    good = write_config(tmp_path / "good")
    assert main(["config", "check", str(good)]) == 0
    assert "radiomics parameters" in capsys.readouterr().out
    bad = write_config(tmp_path / "bad", GOOD_PARAMS.replace("0.1", "-0.1"))
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "key 'setting.binWidth'" in err and str(tmp_path / "bad" / "params.yaml") in err
    assert len(err.strip().splitlines()) == 1


def test_run_and_extract_fail_before_any_work(tmp_path, capsys):
    bad = write_config(tmp_path, GOOD_PARAMS.replace("0.1", "-0.1"))
    cfg = load_config(bad)
    with pytest.raises(ConfigError, match="setting.binWidth"):
        run_pipeline(cfg, out=tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "raw").exists()  # the synthetic cohort was not even generated
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()
    row = write_tiny_patient(tmp_path / "img", "A")
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("patient_id,pcr," + ",".join(row) + "\nA,1,"
                        + ",".join(str(v) for v in row.values()) + "\n")
    code = main(["extract", "radiomics", "--cohort", str(manifest), "--config", str(bad),
                 "--out", str(tmp_path / "x"), "--cache", str(tmp_path / "cache")])
    assert code == 2 and "setting.binWidth" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
    # a kinetic extraction does not read the radiomics parameters
    require_run_inputs(cfg, ("kinetic",))
