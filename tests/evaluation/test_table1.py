import numpy as np
import pandas as pd
import pytest

from workbench.errors import CohortError
from workbench.evaluation.table1 import table1, to_html, write_table1
from workbench.models.split import stratified_split


def _cohort(n=120, seed=0):
    rng = np.random.default_rng(seed)
    pcr = (rng.random(n) < 0.3).astype(int)
    return pd.DataFrame({
        "patient_id": [f"P{i:03d}" for i in range(n)],
        "pcr": pcr,
        # age strongly tied to pCR so the rank-sum p-value must be tiny
        "age": np.where(pcr == 1, 40.0, 60.0) + rng.normal(0, 3, n),
        "laterality": rng.choice(["left", "right"], n),
        "hr_her2": rng.choice(["HR+/HER2-", "HER2+", "triple negative"], n),
        "er": np.where(rng.random(n) < 0.1, None, rng.choice(["positive", "negative"], n)),
    })


def test_split_is_stratified_reproducible_and_keeps_ids():
    df = _cohort()
    a = stratified_split(df["patient_id"], df["pcr"], seed=7)
    b = stratified_split(df["patient_id"], df["pcr"], seed=7)
    c = stratified_split(df["patient_id"], df["pcr"], seed=8)
    assert a.equals(b) and not a.equals(c)
    assert list(a.index) == list(df["patient_id"])
    assert (a == "test").sum() == 36
    rate = df.set_index("patient_id")["pcr"].groupby(a).mean()
    assert abs(rate["train"] - rate["test"]) < 0.03


def test_split_refuses_impossible_stratification():
    with pytest.raises(CohortError, match="at least 2"):
        stratified_split(pd.Series(["a", "b", "c"]), pd.Series([0, 0, 1]))
    with pytest.raises(CohortError, match="labels for every patient"):
        stratified_split(pd.Series(["a", "b"]), pd.Series([0, None]))


def test_table1_counts_tests_and_missing_rows():
    df = _cohort()
    split = stratified_split(df["patient_id"], df["pcr"], seed=1)
    t = table1(df, split)
    n = t.attrs["n"]
    assert sum(n.values()) == len(df)
    age = t[t["Variable"] == "Age (years)"].iloc[0]
    assert age["Test"] == "Wilcoxon rank-sum" and age["p (train)"] == "<0.001"
    lat = t[t["Variable"] == "Laterality"].iloc[0]
    assert lat["Test"] == "Fisher's exact"
    sub = t[t["Variable"].str.startswith("HR/HER2")].iloc[0]
    assert sub["Test"] == "χ²"
    # counts add up to the group size for every categorical variable
    lat_rows = t.iloc[lat.name: lat.name + 2]
    total = sum(int(v.split()[0]) for v in lat_rows["Train pCR"])
    assert total == n["Train pCR"]
    # missing ER values have their own row and are not in the percentages
    er_idx = t.index[t["Variable"].str.startswith("ER status")][0]
    block = t.iloc[er_idx: er_idx + 3]
    assert list(block["Level"]) == ["negative", "positive", "missing"]
    known = sum(int(v.split()[0]) for v in block["Train pCR"].iloc[:2])
    assert known + int(block["Train pCR"].iloc[2]) == n["Train pCR"]


def test_table1_writes_csv_and_html(tmp_path):
    df = _cohort()
    split = stratified_split(df["patient_id"], df["pcr"], seed=1)
    t = table1(df, split)
    paths = write_table1(t, tmp_path, notes=["<b>escaped</b>"])
    csv = pd.read_csv(paths["csv"])
    assert csv.columns[2].startswith("Train pCR (n=")
    html = paths["html"].read_text()
    assert "&lt;b&gt;escaped&lt;/b&gt;" in html and "<table>" in html
    assert to_html(t).count("<tr") == len(t) + 1


def test_table1_on_the_real_ispy1_spreadsheet(ispy1_xlsx, tmp_path):
    from workbench.cohort.loaders.ispy1_workbook import load_ispy1_clinical

    cohort = load_ispy1_clinical(ispy1_xlsx)
    labelled = cohort.labelled()
    split = stratified_split(labelled["patient_id"], labelled["pcr"], seed=42)
    t = table1(labelled, split)
    variables = [v for v in t["Variable"] if v]
    # the study's Table 1 rows
    for name in ("Age", "Race", "ERpos", "PgRpos", "HR Pos", "Her2MostPos", "HR_HER2_STATUS",
                 "Laterality"):
        assert any(name in v for v in variables), name
    n = t.attrs["n"]
    assert n["Train pCR"] + n["Test pCR"] == 58
    assert sum(n.values()) == 215
    # HER2+ tumours respond more: the subtype p-value in training is significant
    sub = t[t["Variable"].str.contains("HR_HER2_STATUS")].iloc[0]
    assert sub["p (train)"] == "<0.001" or float(sub["p (train)"]) < 0.05
    write_table1(t, tmp_path)
    assert (tmp_path / "table1.html").stat().st_size > 1000
