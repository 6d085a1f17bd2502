"""The one per-patient runner: failure isolation, ordering, workers, progress counts."""

import logging

import pytest

from workbench.batch import Job, n_workers, run_batch
from workbench.errors import ImageError


def square(x: int) -> int:
    if x == 3:
        raise ImageError("truncated file", patient=f"P{x}", step="read", path="/img/p3.nii")
    if x == 5:
        raise ZeroDivisionError("boom")
    return x * x


def jobs(n: int) -> list[Job]:
    return [Job(f"P{i}", square, (i,), step="square", tag=i) for i in range(n)]


@pytest.mark.parametrize("workers", [1, 2])
def test_failures_stay_with_their_patient_and_the_others_finish(workers, caplog):
    with caplog.at_level(logging.DEBUG, logger="workbench.batch"):
        out = sorted(run_batch(jobs(8), workers=workers, progress=False),
                     key=lambda o: o.job.tag)
    assert [o.value for o in out if o.ok] == [0, 1, 4, 16, 36, 49]
    known, unexpected = out[3].problem, out[5].problem
    assert known == {"patient_id": "P3", "step": "read", "file": "/img/p3.nii",
                     "message": "truncated file"}
    assert unexpected["patient_id"] == "P5" and unexpected["step"] == "square"
    assert unexpected["message"] == "unexpected ZeroDivisionError: boom"
    assert "Traceback" in out[5].traceback
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("ZeroDivisionError" in r.getMessage() for r in errors)  # a bug is shown


def test_same_outcomes_whatever_the_worker_count():
    def key(outs):
        return sorted((o.job.patient_id, o.value, str(o.problem)) for o in outs)

    assert key(run_batch(jobs(6), workers=1, progress=False)) == key(
        run_batch(jobs(6), workers=2, progress=False))


def test_costly_jobs_run_first_and_an_empty_batch_is_fine():
    order = [o.job.patient_id for o in run_batch(
        [Job("a", square, (1,), cost=1), Job("b", square, (2,), cost=9)], progress=False)]
    assert order == ["b", "a"]
    assert list(run_batch([], progress=False)) == []


def test_n_workers():
    import os

    cpus = os.cpu_count() or 1
    assert n_workers(1, 10) == 1
    assert n_workers(-1, 1000) == cpus
    assert n_workers(8, 3) == 3
    assert n_workers(4, 0) == 1
