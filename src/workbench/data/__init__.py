"""Small reference data shipped inside the package, with its licences.

Two datasets travel with the code, so a clone or an installed wheel needs nothing beside it:

``ibsi1``
    The IBSI-1 digital phantom (``digital_phantom/image.nii.gz``, ``mask.nii.gz``) and the
    IBSI-1 reference values (``reference_values.csv``) used by ``workbench ibsi``
    (:func:`workbench.features.ibsi.run_ibsi`). CC BY 4.0.
``ispy1_clinical``
    The TCIA I-SPY1 clinical and outcome workbook and its two PDF dictionaries, readable with
    ``--format ispy1_clinical``. CC BY 3.0.

The files are byte copies of their sources; ``src/workbench/data/README.md`` lists each with
its source, licence and sha256, and :data:`FILES` holds the same hashes (a test checks both).

Paths come from :func:`importlib.resources.files`, so they work from a source checkout, an
editable install and an installed wheel. The data must sit on the file system: running the
package from a zip archive (zipimport) is not supported and raises a clear error.

Examples
--------
>>> from workbench.data import ibsi1_phantom, ispy1_clinical_workbook
>>> image, mask = ibsi1_phantom()
>>> ispy1_clinical_workbook().name
'I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx'
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import NamedTuple

from workbench.errors import WorkbenchError

__all__ = [
    "DATASETS", "FILES", "LICENCE_FILES", "Dataset", "data_dir", "dataset_path", "describe",
    "ibsi1_dir", "ibsi1_phantom", "ibsi1_reference_values", "ispy1_clinical_workbook",
]


class Dataset(NamedTuple):
    """One shipped dataset: ``(path, licence, citation)``."""

    path: str
    """Path relative to the ``workbench/data`` folder (a folder or the main file)."""
    licence: str
    """Licence of the data (the licence text ships beside it, see :data:`LICENCE_FILES`)."""
    citation: str
    """Attribution to give when using the data."""


DATASETS: dict[str, Dataset] = {
    "ibsi1": Dataset(
        path="ibsi1",
        licence="CC BY 4.0 (phantom: theibsi/data_sets; reference values: IBSI reference manual)",
        citation="Zwanenburg A, Vallieres M, et al. The Image Biomarker Standardization "
                 "Initiative. Radiology 2020;295:328-338, doi:10.1148/radiol.2020191145; "
                 "digital phantom designed by A. Zwanenburg (IBSI)",
    ),
    "ispy1_clinical": Dataset(
        path="ispy1_clinical/I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx",
        licence="CC BY 3.0 (TCIA ISPY1 collection)",
        citation="Newitt D, Hylton N, on behalf of the I-SPY 1 Network and ACRIN 6657 Trial "
                 "Team (2016), The Cancer Imaging Archive, doi:10.7937/K9/TCIA.2016.HdHpgJLK; "
                 "Hylton NM et al., Radiology 2012;263:663-672; Clark K et al., "
                 "J Digit Imaging 2013;26:1045-1057 (TCIA)",
    ),
}
"""Shipped datasets by name: path relative to this package, licence, citation."""

LICENCE_FILES: dict[str, str] = {
    "ibsi1": "ibsi1/digital_phantom/LICENSE.md",
    "ispy1_clinical": "ispy1_clinical/LICENSE.md",
}
"""Licence text shipped with each dataset (path relative to this package)."""

# sha256 of every shipped data file (README.md of this folder and the Python files excepted);
# the same values are listed in README.md. Change both when a file is deliberately replaced.
FILES: dict[str, str] = {
    "ibsi1/README.md":
        "93bea536c30d98df05641aa476f33832bcdcc39bca24fe3a70ffc6e42133de78",
    "ibsi1/digital_phantom/LICENSE.md":
        "c863fa4a2aa4d3152f4bcb58bb7bb63c95704805bbb4aec18cbea7c701d4f046",
    "ibsi1/digital_phantom/README_upstream.md":
        "9759bad4490e0f2443188a6f565c14d55fce8fdc90670c153962e375fbcdee00",
    "ibsi1/digital_phantom/image.nii.gz":
        "83773ac2a288aa93cf819a98eaf301c18d35d5876182ec9c18733184e2b7a83a",
    "ibsi1/digital_phantom/mask.nii.gz":
        "3032d340944b577b83bc559ea7ae9a6034b84633a840eff39570ec17aa1d6281",
    "ibsi1/reference_values.csv":
        "df9d328ad35f73b192dd0ca7c5f595e2866c65d53609d5a544b0dfbd982fa50e",
    "ispy1_clinical/I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx":
        "b488e8479d89986de72de0553c379a11417d8e207f001c1bd1851c22508813ba",
    "ispy1_clinical/I-SPY_1_Dict_Outcomes.pdf":
        "d4392d3d0ce4518724b880c61fc5484059999189509f001e9bc1d0b41edd1b4a",
    "ispy1_clinical/I-SPY_1_Dict_Predictors.pdf":
        "47345a4b6788d09a83876d0c60c5cffd2f2fd255c2c96f9715d1b571756a53a6",
    "ispy1_clinical/LICENSE.md":
        "ddfb5f96b00e03f6e0a2eab2f57a0e1f26a6088755e0e15cbe1deecf97a17aa3",
}
"""sha256 of every shipped data file, by path relative to this package."""


def data_dir() -> Path:
    """The folder of this package, holding every shipped dataset.

    Raises
    ------
    WorkbenchError
        When the package is imported from a zip archive (not supported: the readers need
        real files).
    """
    root = files(__name__)
    if not isinstance(root, Path):  # e.g. a zipfile.Path under zipimport
        raise WorkbenchError(
            "the workbench reference data is not on the file system (package imported from "
            "a zip archive?); install the package normally, e.g. pip install "
            "pcr-fusion-workbench", step="data", path=str(root))
    return root


def _shipped(relative: str) -> Path:
    path = data_dir() / relative
    if not path.exists():
        raise WorkbenchError("shipped reference data missing from the installed package; "
                             "reinstall it (pip install --force-reinstall ...) or pass the "
                             "file explicitly", step="data", path=path)
    return path


def dataset_path(name: str) -> Path:
    """Absolute path of the dataset ``name`` (a key of :data:`DATASETS`).

    ``ibsi1`` is a folder (see :func:`ibsi1_dir`); ``ispy1_clinical`` is the workbook.
    """
    if name not in DATASETS:
        raise WorkbenchError(f"unknown shipped dataset {name!r}; allowed: "
                             f"{', '.join(DATASETS)}", step="data")
    return _shipped(DATASETS[name].path)


def ibsi1_dir() -> Path:
    """Folder holding ``digital_phantom/`` (``image.nii.gz``, ``mask.nii.gz``) and
    ``reference_values.csv`` of IBSI chapter 1."""
    return dataset_path("ibsi1")


def ibsi1_phantom() -> tuple[Path, Path]:
    """``(image, mask)`` of the IBSI-1 digital phantom (NIfTI)."""
    return (_shipped("ibsi1/digital_phantom/image.nii.gz"),
            _shipped("ibsi1/digital_phantom/mask.nii.gz"))


def ibsi1_reference_values() -> Path:
    """The IBSI-1 ``reference_values.csv`` (columns described in ``ibsi1/README.md``)."""
    return _shipped("ibsi1/reference_values.csv")


def ispy1_clinical_workbook() -> Path:
    """The TCIA I-SPY1 ``I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx``; read it with
    :func:`workbench.cohort.ispy1.load_ispy1_clinical` or ``--format ispy1_clinical``."""
    return dataset_path("ispy1_clinical")


def describe() -> str:
    """Human-readable list of the shipped datasets: path, licence, citation and files."""
    root = data_dir()
    lines = [f"Reference data shipped with the workbench ({root}):"]
    for name, ds in DATASETS.items():
        folder = name + "/"
        shipped = [f.removeprefix(folder) for f in FILES if f.startswith(folder)]
        lines += [
            "",
            name,
            f"  path:     {root / ds.path}",
            f"  licence:  {ds.licence}; text: {root / LICENCE_FILES[name]}",
            f"  cite:     {ds.citation}",
            f"  files:    {', '.join(shipped)}",
        ]
    lines += ["", f"Sources and sha256 of every file: {root / 'README.md'}",
              "Print one path with: workbench data path NAME  (e.g. workbench cohort check "
              "--format ispy1_clinical \"$(workbench data path ispy1_clinical)\")"]
    return "\n".join(lines)
