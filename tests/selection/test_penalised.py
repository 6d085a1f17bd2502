"""PenalisedLogistic and its path: scikit-learn's objective, unpenalised clinical columns,
inner-CV sparsity, parameter errors, collinear clinical columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from workbench.selection import PenalisedLogistic, SelectionError, penalised_logistic_path
from workbench.selection._penalised import alpha_max

#: every column penalised (no clinical exemption); the parameter is being renamed from
#: ``unpenalised_prefix`` (a prefix) to ``unpenalised`` (names or patterns): either works here
EVERYTHING_PENALISED = {"unpenalised": None}


def _standardised(n=120, p=10, seed=0):
    """Standardised columns and labels from a logistic model on the first three."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    eta = 0.3 + X[:, 0] - 0.8 * X[:, 1] + 0.5 * X[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, y


def _reference(X, y, alpha, l1_ratio, solver):
    """sklearn's C-scaled objective: C = 1 / (alpha * n) makes it ours divided by C * n."""
    return LogisticRegression(C=1.0 / (alpha * len(y)), l1_ratio=l1_ratio, solver=solver,
                              tol=1e-12, max_iter=1_000_000).fit(X, y)


# ----------------------------------------------------------------------------- the path
@pytest.mark.parametrize(("l1_ratio", "solver"), [(1.0, "saga"), (0.5, "saga"), (0.0, "lbfgs")])
@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.02])
def test_path_agrees_with_sklearn_logistic_regression(l1_ratio, solver, fraction):
    X, y = _standardised(seed=int(fraction * 100))
    top = alpha_max(X, y, np.ones(X.shape[1], dtype=bool), l1_ratio)
    alphas = np.array([top, top * fraction])
    coefs, intercepts, fitted = penalised_logistic_path(X, y, alphas, l1_ratio=l1_ratio,
                                                        tol=1e-10)
    assert fitted == len(alphas)
    ref = _reference(X, y, alphas[-1], l1_ratio, solver)
    np.testing.assert_allclose(coefs[-1], ref.coef_.ravel(), atol=1e-4)
    assert intercepts[-1] == pytest.approx(ref.intercept_[0], abs=1e-4)  # intercept free
    if l1_ratio > 0:
        assert np.array_equal(coefs[-1] != 0, np.abs(ref.coef_.ravel()) > 1e-6)
    else:
        assert np.all(coefs[-1] != 0)  # ridge shrinks, never zeroes


def test_liblinear_lasso_agrees_when_its_intercept_is_barely_penalised():
    # liblinear penalises the intercept; a large intercept_scaling makes that negligible
    X, y = _standardised(seed=3)
    top = alpha_max(X, y, np.ones(X.shape[1], dtype=bool), 1.0)
    alpha = 0.2 * top
    coefs, intercepts, _ = penalised_logistic_path(X, y, np.array([top, alpha]), tol=1e-10)
    ref = LogisticRegression(C=1.0 / (alpha * len(y)), l1_ratio=1.0, solver="liblinear",
                             intercept_scaling=1e4, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(coefs[-1], ref.coef_.ravel(), atol=1e-4)
    assert intercepts[-1] == pytest.approx(ref.intercept_[0], abs=5e-4)


def test_alpha_max_is_the_first_penalty_that_zeroes_everything():
    X, y = _standardised(seed=4)
    pen = np.ones(X.shape[1], dtype=bool)
    top = alpha_max(X, y, pen, 1.0)
    coefs, intercepts, _ = penalised_logistic_path(X, y, np.array([top, 0.97 * top]),
                                                   tol=1e-10)
    assert not coefs[0].any()
    assert intercepts[0] == pytest.approx(np.log(y.mean() / (1 - y.mean())))
    assert coefs[1].any()  # just below it, a feature enters


# ----------------------------------------------------------------------------- clinical
def _with_clinical(n=150, p=12, seed=0):
    """Two clinical columns with signal, imaging columns with a little."""
    rng = np.random.default_rng(seed)
    clin = rng.standard_normal((n, 2))
    img = rng.standard_normal((n, p))
    eta = -0.4 + 1.2 * clin[:, 0] - 0.7 * clin[:, 1] + 0.6 * img[:, 0]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    X = np.column_stack([clin, img])
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    pen = np.array([False, False] + [True] * p)
    return X, y, pen


def test_at_alpha_max_only_the_clinical_model_is_fitted():
    X, y, pen = _with_clinical()
    top = alpha_max(X, y, pen, 1.0)
    coefs, intercepts, _ = penalised_logistic_path(X, y, np.array([top]), penalised=pen,
                                                   tol=1e-10)
    assert not coefs[0][pen].any()
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=100_000).fit(X[:, ~pen], y)
    np.testing.assert_allclose(coefs[0][~pen], ref.coef_.ravel(), atol=1e-4)
    assert intercepts[0] == pytest.approx(ref.intercept_[0], abs=1e-4)


def test_a_strong_penalty_does_not_shrink_the_clinical_columns():
    X, y, pen = _with_clinical(seed=1)
    strong = np.array([1e3 * alpha_max(X, y, pen, 1.0)])
    kept, _, _ = penalised_logistic_path(X, y, strong, penalised=pen, tol=1e-10)
    shared, _, _ = penalised_logistic_path(X, y, strong, tol=1e-10)  # everything penalised
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=100_000).fit(X[:, ~pen], y)
    np.testing.assert_allclose(kept[0][~pen], ref.coef_.ravel(), atol=1e-4)
    assert abs(ref.coef_[0, 0]) > 0.5  # the clinical signal is really there...
    assert not shared[0].any()  # ... and a shared penalty throws it away


def _frame(X, n_clin=2):
    names = [f"clin__c{j}" for j in range(n_clin)]
    names += [f"rad__f{j:03d}" for j in range(X.shape[1] - n_clin)]
    return pd.DataFrame(X, columns=names)


@pytest.mark.parametrize("l1_ratios", [(1.0,), (0.0,)])
def test_estimator_keeps_the_clinical_coefficients_unshrunk_on_noise_imaging(l1_ratios):
    # imaging is pure noise here: whatever penalty the inner CV picks, the clinical
    # coefficients stay near the unpenalised fit on the clinical columns alone, while a
    # shared penalty (no column exempt) pulls them towards zero
    rng = np.random.default_rng(5)
    n = 160
    clin = rng.standard_normal((n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.0 * clin[:, 0] - 0.8 * clin[:, 1])))).astype(int)
    df = _frame(np.column_stack([clin, rng.standard_normal((n, 40))]))
    own = PenalisedLogistic(l1_ratios=l1_ratios, n_alphas=10, cv=3).fit(df, y)
    shared = PenalisedLogistic(l1_ratios=l1_ratios, n_alphas=10, cv=3,
                               **EVERYTHING_PENALISED).fit(df, y)
    assert own.unpenalised_.tolist() == [True, True] + [False] * 40
    assert not shared.unpenalised_.any()
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(clin, y)
    clin_own, clin_shared = own.coef_[:2], shared.coef_[:2]
    # at most the few noise features the chosen penalty lets in move them slightly
    np.testing.assert_allclose(clin_own, ref.coef_.ravel(), rtol=0.25)
    assert np.all(np.abs(clin_shared) < 0.9 * np.abs(clin_own))


# ----------------------------------------------------------------------------- inner CV
def _sparse_problem(seed, n=150, p=203):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    eta = 1.5 * (X[:, 0] + X[:, 1] - X[:, 2])
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame(X, columns=[f"rad__f{j:03d}" for j in range(p)]), y


def test_inner_cv_picks_a_sparse_model_holding_the_true_features():
    found = []
    for seed in range(3):
        X, y = _sparse_problem(seed)
        model = PenalisedLogistic(n_alphas=20, cv=5, random_state=seed).fit(X, y)
        support = np.flatnonzero(model.support_)
        found.append({0, 1, 2} <= set(support))
        assert len(support) <= 0.2 * X.shape[1]  # sparse: most of the 200 noise left out
        top3 = np.argsort(-np.abs(model.coef_))[:3]
        assert set(top3) == {0, 1, 2}  # the true ones carry the largest weights
        assert model.cv_note_ is None
    assert sum(found) >= 2


def test_cv_results_hold_each_grid_once_and_one_chosen_penalty():
    X, y = _sparse_problem(7, n=90, p=30)
    model = PenalisedLogistic(l1_ratios=(0.5, 1.0), n_alphas=6, cv=3).fit(X, y)
    res = model.cv_results_
    assert list(res.columns) == ["l1_ratio", "alpha", "mean_score", "std_score",
                                 "n_nonzero", "chosen"]
    assert res.groupby("l1_ratio").size().to_dict() == {0.5: 6, 1.0: 6}
    assert res["chosen"].sum() == 1
    chosen = res[res["chosen"]].iloc[0]
    assert (chosen["alpha"], chosen["l1_ratio"]) == (model.alpha_, model.l1_ratio_)
    assert chosen["mean_score"] == res["mean_score"].min()  # deviance: lower is better
    for _, grid in res.groupby("l1_ratio"):
        assert grid["alpha"].is_monotonic_decreasing
        assert grid["n_nonzero"].iloc[0] == 0  # the top of each path zeroes everything
    auc = PenalisedLogistic(n_alphas=6, cv=3, scoring="auc").fit(X, y).cv_results_
    assert auc.loc[auc["chosen"], "mean_score"].iat[0] == auc["mean_score"].max()


def test_a_class_too_small_for_cv_falls_back_to_the_middle_of_the_grid():
    X, y = _sparse_problem(8, n=40, p=10)
    y = np.zeros(len(y), dtype=int)
    y[0] = 1
    model = PenalisedLogistic(n_alphas=5, cv=3).fit(X, y)
    assert "no inner CV" in model.cv_note_
    assert model.alpha_ == model.cv_results_["alpha"].iloc[2]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("params", "name"), [
    ({"l1_ratios": (1.5,)}, "l1_ratios"),
    ({"l1_ratios": ()}, "l1_ratios"),
    ({"n_alphas": 1}, "n_alphas"),
    ({"alpha_min_ratio": 1.0}, "alpha_min_ratio"),
    ({"cv": 1}, "cv"),
    ({"scoring": "x"}, "scoring"),
])
def test_bad_parameters_are_named(params, name):
    X, y = _sparse_problem(9, n=40, p=5)
    with pytest.raises(SelectionError, match=rf"parameter {name} must be .*got"):
        PenalisedLogistic(**params).fit(X, y)


def test_single_class_is_refused():
    X, y = _sparse_problem(9, n=40, p=5)
    with pytest.raises(SelectionError):
        PenalisedLogistic(n_alphas=4, cv=3).fit(X, np.zeros(len(y), dtype=int))


def test_an_exact_copy_of_a_clinical_column_changes_nothing():
    rng = np.random.default_rng(11)
    n = 100
    age = rng.normal(50, 10, n)
    img = rng.standard_normal((n, 15))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.08 * (age - 50) + img[:, 0])))).astype(int)
    one = pd.DataFrame(img, columns=[f"rad__f{j}" for j in range(15)])
    one.insert(0, "clin__age", age)
    two = one.copy()
    two.insert(1, "clin__age_copy", age)
    a = PenalisedLogistic(n_alphas=8, cv=3).fit(one, y)
    b = PenalisedLogistic(n_alphas=8, cv=3).fit(two, y)
    assert np.all(np.isfinite(b.coef_)) and np.isfinite(b.intercept_)
    assert b.alpha_ == pytest.approx(a.alpha_, rel=1e-6)
    # the pair shares the one column's coefficient; the fitted probabilities are the same
    assert b.coef_[0] + b.coef_[1] == pytest.approx(a.coef_[0], rel=1e-4)
    np.testing.assert_allclose(b.predict_proba(two), a.predict_proba(one), atol=1e-6)
