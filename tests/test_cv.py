"""Cross-validation from per-fold states (RidgeCV, LassoCV, ElasticNetCV) against
scikit-learn with the same folds, streamed against in memory, and refusals.

Tolerances. Our CV curve is the exact weighted MSE of each fold's coefficients,
computed from the fold's R factor: for well-conditioned designs (κ ≲ 10², as here) its
rounding is ~κ·ε relative. scikit-learn computes the same MSE from the residuals, with
rounding of the same order. The remaining difference is the coefficients': ridge is a
direct solve on both sides (agreement ~κ²·ε ≈ 1e-12); the lasso/elastic-net
coefficients carry each solver's stopping rule, so both run with tol=1e-12 (duality gap
≤ 1e-12·‖y‖²/n), where coordinate descent's linear convergence has long reached
rounding level. 1e-8 relative on the curve (the issue's requirement) leaves a wide
margin over the ~1e-13 seen, yet a wrong fold, a wrong centring or a wrong weight
changes the curve at 1e-2 or more.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import linear_model as sk
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV, KFold, ShuffleSplit
from sklearn.utils.estimator_checks import parametrize_with_checks

from torchlinreg import ElasticNetCV, InputError, LassoCV, RidgeCV
from torchlinreg.models._folds import hash_folds, kfold_labels

CURVE = 1e-8
TIGHT = {"tol": 1e-12, "max_iter": 100_000}


def _data(n: int = 240, p: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + rng.normal(size=p) * 3  # offsets: centring matters
    beta = rng.normal(size=p) * (rng.random(p) < 0.6)
    return X, X @ beta + 5 + rng.normal(size=n)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(b).max())


def _splits(X: np.ndarray, seed: int = 1, k: int = 5) -> list:
    return list(KFold(k, shuffle=True, random_state=seed).split(X))


def test_ridge_cv_curve_and_choice_equal_scikit_learn():
    X, y = _data()
    splits = _splits(X)
    alphas = [1e-3, 0.1, 1.0, 10.0, 100.0, 1000.0]
    ours = RidgeCV(alphas, cv=splits).fit(X, y)
    grid = GridSearchCV(sk.Ridge(), {"alpha": alphas}, cv=splits,
                        scoring="neg_mean_squared_error").fit(X, y)  # fmt: skip
    theirs = -np.array([grid.cv_results_[f"split{k}_test_score"] for k in range(5)]).T
    assert ours.mse_path_.shape == (len(alphas), 5)
    assert _rel(ours.mse_path_, theirs) < CURVE
    ref = sk.RidgeCV(alphas, cv=splits, scoring="neg_mean_squared_error").fit(X, y)
    assert ours.alpha_ == ref.alpha_
    assert ours.best_score_ == pytest.approx(ref.best_score_, rel=CURVE)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-10)
    np.testing.assert_allclose(ours.predict(X[:5]), ref.predict(X[:5]), rtol=1e-10)


def test_int_cv_is_kfold_and_random_state_shuffles_as_kfold():
    X, y = _data(n=203)
    alphas = [0.01, 1.0, 50.0]
    plain = RidgeCV(alphas, cv=4).fit(X, y)
    same = RidgeCV(alphas, cv=list(KFold(4).split(X))).fit(X, y)
    np.testing.assert_array_equal(plain.mse_path_, same.mse_path_)
    shuffled = RidgeCV(alphas, cv=4, random_state=7).fit(X, y)
    ref = RidgeCV(alphas, cv=list(KFold(4, shuffle=True, random_state=7).split(X))).fit(X, y)
    np.testing.assert_array_equal(shuffled.mse_path_, ref.mse_path_)
    assert _rel(shuffled.mse_path_, plain.mse_path_) > 1e-4  # other folds, other curve
    for seed in (None, 3):
        labels = kfold_labels(203, 4, seed)
        for k, (_, test) in enumerate(KFold(4, shuffle=seed is not None,
                                            random_state=seed).split(X)):  # fmt: skip
            np.testing.assert_array_equal(np.flatnonzero(labels == k), test)


def test_group_splitter_gets_groups_and_equals_labels():
    from sklearn.model_selection import GroupKFold

    X, y = _data(n=120, p=3, seed=7)
    groups = np.repeat(np.arange(12), 10)
    ours = RidgeCV([0.1, 10.0], cv=GroupKFold(3)).fit(X, y, groups=groups)
    splits = list(GroupKFold(3).split(X, y, groups))
    ref = RidgeCV([0.1, 10.0], cv=splits).fit(X, y)
    np.testing.assert_array_equal(ours.mse_path_, ref.mse_path_)


def test_least_squares_cv_error_equals_cross_val_score():
    """alpha 0: least squares' CV error, for comparing feature sets."""
    from sklearn.model_selection import cross_val_score

    X, y = _data(n=150, p=4, seed=6)
    for cols in ([0, 1], [0, 1, 2, 3]):
        ours = RidgeCV([0.0], cv=4).fit(X[:, cols], y)
        ref = -cross_val_score(sk.LinearRegression(), X[:, cols], y, cv=KFold(4),
                               scoring="neg_mean_squared_error")  # fmt: skip
        assert _rel(ours.mse_path_[0], ref) < 1e-10
        assert -ours.best_score_ == pytest.approx(ref.mean(), rel=1e-10)


@pytest.mark.parametrize("dataset", ["random", "diabetes"])
def test_lasso_cv_equals_scikit_learn(dataset):
    if dataset == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    else:
        X, y = _data(n=300, p=10, seed=3)
    splits = _splits(X, seed=2)
    ours = LassoCV(cv=splits, **TIGHT).fit(X, y)
    ref = sk.LassoCV(cv=splits, **TIGHT).fit(X, y)
    assert _rel(ours.alphas_, ref.alphas_) < 1e-12
    assert ours.mse_path_.shape == ref.mse_path_.shape == (100, 5)
    assert _rel(ours.mse_path_, ref.mse_path_) < CURVE
    assert ours.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(
        ours.coef_, ref.coef_, rtol=1e-7, atol=1e-8 * np.abs(ref.coef_).max()
    )
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-8)
    assert not hasattr(ours, "l1_ratio_")


def test_elastic_net_cv_weighted_several_l1_ratios_equals_scikit_learn():
    X, y = _data(n=250, p=6, seed=5)
    w = np.random.default_rng(1).uniform(0.1, 3.0, size=len(y))
    splits = _splits(X, seed=4)
    ratios = [0.2, 0.6, 1.0]
    ours = ElasticNetCV(l1_ratio=ratios, alphas=30, cv=splits, **TIGHT).fit(X, y, w)
    ref = sk.ElasticNetCV(l1_ratio=ratios, alphas=30, cv=splits, **TIGHT).fit(X, y, w)
    assert ours.alphas_.shape == ref.alphas_.shape == (3, 30)
    assert _rel(ours.alphas_, ref.alphas_) < 1e-12
    assert ours.mse_path_.shape == ref.mse_path_.shape == (3, 30, 5)
    assert _rel(ours.mse_path_, ref.mse_path_) < CURVE
    assert (ours.alpha_, ours.l1_ratio_) == (pytest.approx(ref.alpha_, rel=1e-12), ref.l1_ratio_)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-7, atol=1e-9)


def test_explicit_alphas_and_non_partition_splits_equal_scikit_learn():
    """ShuffleSplit's test sets overlap and leave rows out: per-split states."""
    X, y = _data(n=200, p=5, seed=8)
    splits = list(ShuffleSplit(4, test_size=0.3, random_state=0).split(X))
    alphas = [0.5, 0.001, 0.05, 0.01]  # tried in decreasing order, as scikit-learn
    ours = LassoCV(alphas=alphas, cv=splits, **TIGHT).fit(X, y)
    ref = sk.LassoCV(alphas=alphas, cv=splits, **TIGHT).fit(X, y)
    np.testing.assert_array_equal(ours.alphas_, ref.alphas_)
    assert _rel(ours.mse_path_, ref.mse_path_) < CURVE
    assert ours.alpha_ == ref.alpha_


def _chunks(X, y, w=None, labels=None, sizes=(37, 1, 90, 500)):
    out, start, i = [], 0, 0
    while start < len(y):
        stop = min(len(y), start + sizes[i % len(sizes)])
        rows = slice(start, stop)
        item = [X[rows], y[rows], None if w is None else w[rows]]
        if labels is not None:
            item.append(labels[rows])
        out.append(tuple(item))
        start, i = stop, i + 1
    return out


def test_streamed_with_fold_labels_equals_in_memory():
    X, y = _data(n=700, p=7, seed=9)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=len(y))
    labels = np.random.default_rng(3).choice(["a", "b", "c", "d"], size=len(y))
    mem = LassoCV(alphas=40, **TIGHT).fit(X, y, w, folds=labels)
    streamed = LassoCV(alphas=40, **TIGHT).fit_chunks(_chunks(X, y, w, labels), folds="chunks")
    assert mem.n_folds_ == streamed.n_folds_ == 4
    assert _rel(streamed.alphas_, mem.alphas_) < 1e-12
    assert _rel(streamed.mse_path_, mem.mse_path_) < 1e-10
    assert streamed.alpha_ == pytest.approx(mem.alpha_, rel=1e-12)
    np.testing.assert_allclose(streamed.coef_, mem.coef_, rtol=1e-8, atol=1e-10)
    ridge = RidgeCV([0.1, 10.0], cv=splits_of(labels)).fit(X, y, w)
    ridge_streamed = RidgeCV([0.1, 10.0]).fit_chunks(_chunks(X, y, w, labels), folds="chunks")
    assert _rel(ridge_streamed.mse_path_, ridge.mse_path_) < 1e-10


def splits_of(labels: np.ndarray) -> list:
    return [(np.flatnonzero(labels != v), np.flatnonzero(labels == v)) for v in np.unique(labels)]


def test_hashed_stream_folds_are_seeded_and_chunking_independent():
    X, y = _data(n=600, p=4, seed=11)
    labels = hash_folds(0, len(y), 5, seed=42)
    assert set(np.bincount(labels)) and min(np.bincount(labels)) > 80  # about 120 each
    parts = np.concatenate([hash_folds(0, 250, 5, 42), hash_folds(250, 350, 5, 42)])
    np.testing.assert_array_equal(parts, labels)
    assert (hash_folds(0, len(y), 5, seed=43) != labels).mean() > 0.5
    mem = RidgeCV([0.01, 1.0, 100.0]).fit(X, y, folds=labels)
    streamed = RidgeCV([0.01, 1.0, 100.0], random_state=42).fit_chunks(_chunks(X, y))
    assert _rel(streamed.mse_path_, mem.mse_path_) < 1e-10
    one_chunk = RidgeCV([0.01, 1.0, 100.0], random_state=42).fit_chunks([(X, y)])
    assert _rel(one_chunk.mse_path_, mem.mse_path_) < 1e-10


def test_sklearn_contract_clone_and_params():
    from sklearn.base import clone

    model = ElasticNetCV(l1_ratio=[0.3, 0.9], alphas=5, cv=3)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    X, y = _data(n=60, p=3, seed=4)
    ref = sk.ElasticNetCV(l1_ratio=[0.3, 0.9], alphas=5, cv=3).fit(X, y)
    copy.fit(X, y)
    assert (copy.alpha_, copy.l1_ratio_) == (pytest.approx(ref.alpha_), ref.l1_ratio_)
    # default tol=1e-4 on both: the fits agree to about that, not to rounding
    assert copy.score(X, y) == pytest.approx(ref.score(X, y), rel=1e-4)
    assert ref.score(X, y) > 0.5


@pytest.mark.parametrize(
    ("make", "fit", "message"),
    [
        (lambda: RidgeCV(cv=5), lambda m, X, y: m.fit(X[:4], y[:4]), "n_samples=4"),
        (
            lambda: LassoCV(cv=5),
            lambda m, X, y: m.fit_chunks([(X[:3], y[:3])]),
            "at least 5 rows, but the stream",
        ),
        (lambda: RidgeCV(), lambda m, X, y: m.fit(X, y, folds=np.ones(len(y))), "1 level"),
        (
            lambda: LassoCV(),
            lambda m, X, y: m.fit_chunks(_chunks(X, y, labels=np.zeros(len(y))), folds="chunks"),
            "1 level",
        ),
        (lambda: RidgeCV([1.0, -0.5]), lambda m, X, y: m.fit(X, y), ">= 0"),
        (lambda: LassoCV(alphas=[0.1, -1.0]), lambda m, X, y: m.fit(X, y), ">= 0"),
        (lambda: ElasticNetCV(l1_ratio=1.5), lambda m, X, y: m.fit(X, y), "l1_ratio"),
        (lambda: RidgeCV(cv=1), lambda m, X, y: m.fit(X, y), "integer >= 2"),
        (lambda: RidgeCV(cv=KFold(3)), lambda m, X, y: m.fit_chunks([(X, y)]), "in memory"),
        (lambda: RidgeCV(), lambda m, X, y: m.fit(X, np.c_[y, y]), "one target"),
        (
            lambda: RidgeCV(),
            lambda m, X, y: m.fit(X, y, folds=np.r_[np.nan, np.ones(len(y) - 1)]),
            "fold of row 0 is missing",
        ),
    ],
)
def test_bad_input_is_one_clear_error(make, fit, message):
    X, y = _data(n=50, p=3)
    with pytest.raises(InputError, match=message):
        fit(make(), X, y)


# -- the command line: fit --cv streams the file once ------------------------------------


def _write_csv(path, X, y, folds=None):
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["y"] = y
    if folds is not None:
        frame["fold"] = folds
    frame.to_csv(path, index=False)


def _cli(argv, capsys):
    import json

    from torchlinreg.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else out), err


def test_cli_lasso_path_equals_the_library_on_hashed_folds(tmp_path, capsys):
    X, y = _data(n=900, p=5, seed=12)
    _write_csv(tmp_path / "d.csv", X, y)
    code, report, _ = _cli(["fit", tmp_path / "d.csv", "--target", "y", "--cv", "5",
                            "--lasso-path", "--seed", "9", "--json"], capsys)  # fmt: skip
    assert code == 0
    ref = LassoCV(random_state=9).fit(X, y, folds=hash_folds(0, len(y), 5, seed=9))
    cv = report["cv"]
    assert cv["n_folds"] == 5 and cv["folds"] == "hashed row numbers, seed 9"
    assert _rel(np.array(cv["mse_path"]), ref.mse_path_) < 1e-10
    assert cv["alpha"] == pytest.approx(ref.alpha_, rel=1e-12)
    coef = [report["coefficients"]["y"][f"x{j}"] for j in range(5)]
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-6, atol=1e-9)


def test_cli_ridge_path_with_fold_column_equals_the_library(tmp_path, capsys):
    X, y = _data(n=400, p=4, seed=13)
    folds = np.random.default_rng(0).choice([3, 1, 2], size=len(y))
    _write_csv(tmp_path / "d.csv", X, y, folds)
    argv = ["fit", tmp_path / "d.csv", "--target", "y", "--cv", "3", "--ridge-path",
            "--alphas", "0.01,1,100", "--fold-column", "fold"]  # fmt: skip
    code, text, _ = _cli(argv, capsys)
    assert code == 0
    ref = RidgeCV([0.01, 1.0, 100.0]).fit(X, y, folds=folds)
    assert f"chosen alpha {ref.alpha_:.6g}" in text and "3 folds (column fold)" in text
    code, report, _ = _cli([*argv, "--json"], capsys)
    assert _rel(np.array(report["cv"]["mse_path"]), ref.mse_path_) < 1e-10
    assert report["features"] == [f"x{j}" for j in range(4)]  # the fold column is no feature


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cv", "3", "--fold-column", "one"], "1 level"),
        (["--cv", "3", "--fold-column", "x0"], "more than 3 distinct values"),
        (["--cv", "4", "--fold-column", "fold"], "holds 3 fold labels but --cv is 4"),
        (["--cv", "3", "--fold-column", "nope"], "no fold column 'nope'"),
        (["--lasso-path"], "add --cv K"),
        (["--cv", "3", "--ridge-path", "--alphas", "1,-2"], "finite number >= 0"),
        (["--cv", "1"], "must be >= 2"),
    ],
)
def test_cli_cv_errors_are_one_line_exit_2(tmp_path, capsys, args, message):
    import pandas as pd

    X, y = _data(n=60, p=2, seed=14)
    _write_csv(tmp_path / "d.csv", X, y, np.tile(["a", "b", "c"], 20))
    frame = pd.read_csv(tmp_path / "d.csv")
    frame["one"] = 7
    frame.to_csv(tmp_path / "d.csv", index=False)
    code, _, err = _cli(["fit", tmp_path / "d.csv", "--target", "y", "--exclude", "one",
                         *args, "-o", tmp_path / "m.safetensors"], capsys)  # fmt: skip
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()


# -- scikit-learn's own estimator checks --------------------------------------------------


def _expected_failures(estimator):  # type: ignore[no-untyped-def]
    if isinstance(estimator, RidgeCV):
        return {}
    return {
        # The curves and the chosen alpha agree to 1e-16; the refits at that alpha stop
        # within tol=1e-4 (duality gap ~5e-5) at different points of a flat optimum
        # (p = 30 > n), their coefficients 0.18 apart, the check asks 1e-7.
        "check_sample_weight_equivalence_on_dense_data": "p > n: refits meet tol at "
        "different points of a flat optimum",
    }


with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit from")
    _checks = parametrize_with_checks([RidgeCV(cv=3), LassoCV(cv=3, alphas=5)],
                                      expected_failed_checks=_expected_failures)  # fmt: skip


@pytest.mark.filterwarnings("ignore:Estimator .* does not inherit from")
@_checks
def test_scikit_learn_check(estimator, check):
    check(estimator)
