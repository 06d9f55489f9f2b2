"""The numbers behind each picture (torchlinreg.plots), against direct computations:
the LOWESS smoother against statsmodels', R's normal quantiles and qqline, Cook's
contours, the labelled rows by the documented rule, panels from an influence summary
against the in-memory statistics, the training curve against the history and the
gradient path's cost against the exact quadratic and the training log. Not pixels."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from torchlinreg import GDRegressor, LinearRegression  # noqa: E402
from torchlinreg.errors import InputError  # noqa: E402
from torchlinreg.plots import (  # noqa: E402
    coefficient_intervals,
    contour_levels,
    cook_contours,
    gradient_path,
    lowess,
    most_extreme,
    normal_qq,
    normal_quantiles,
    plot_coefficients,
    plot_diagnostics,
    plot_gradient_path,
    plot_training_curve,
    quadratic_cost,
    quartile_line,
    residuals_fitted,
    residuals_leverage,
    scale_location,
    summary_panels,
    training_curve,
)
from torchlinreg.stats.influence import influence, influence_summary  # noqa: E402


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ [1.0, -2.0, 0.5] + 3.0 + rng.standard_t(3, size=n)
    return X, y


@pytest.mark.parametrize("n", [2, 3, 7, 60, 700])
@pytest.mark.parametrize("iterations", [0, 3])
def test_lowess_equals_statsmodels(n: int, iterations: int) -> None:
    from statsmodels.nonparametric.smoothers_lowess import lowess as sm_lowess

    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = np.sin(2 * x) + 0.3 * rng.standard_t(2, size=n)
    xs, ys = lowess(x, y, frac=2 / 3, iterations=iterations)
    expected = sm_lowess(y, x, frac=2 / 3, it=iterations, delta=0.0)
    np.testing.assert_array_equal(xs, expected[:, 0])
    # The same weighted sums in another order: a few ulps of |y| per term.
    np.testing.assert_allclose(ys, expected[:, 1], rtol=0, atol=1e-12 * np.abs(y).max() * n)


def test_lowess_recomputed_weights_equal_kept_ones(monkeypatch) -> None:
    from torchlinreg.plots import smooth

    x, y = np.random.default_rng(1).normal(size=(2, 300))
    kept = lowess(x, y)[1]
    monkeypatch.setattr(smooth, "_KEEP", 0)  # large samples recompute the tricube
    np.testing.assert_array_equal(lowess(x, y)[1], kept)


def test_most_extreme_order_ties_and_nan() -> None:
    score = np.array([1.0, 5.0, np.nan, 5.0, -9.0, 3.0, np.inf])
    # inf is not finite: never labelled; ties (5, 5): the earlier first.
    assert most_extreme(score, 3).tolist() == [1, 3, 5]
    assert most_extreme(score, 0).tolist() == []


@pytest.mark.parametrize("n", [4, 10, 11, 250])
def test_normal_quantiles_are_qnorm_of_ppoints(n: int) -> None:
    from scipy.stats import norm

    a = 3 / 8 if n <= 10 else 1 / 2
    expected = norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    np.testing.assert_allclose(normal_quantiles(n), expected, rtol=1e-14, atol=1e-15)


def test_normal_qq_pairs_order_statistics_and_labels() -> None:
    r = np.array([0.3, -2.5, 1.1, 0.0, 4.0, -0.7])
    panel = normal_qq(r, rows=np.arange(10, 16))
    order = np.argsort(r)
    np.testing.assert_array_equal(panel.x[order], normal_quantiles(6))
    np.testing.assert_array_equal(panel.y, r)
    assert panel.rows[panel.labelled].tolist() == [14, 11, 12]  # |4|, |-2.5|, |1.1|


def test_quartile_line_through_the_quartiles() -> None:
    from scipy.stats import norm

    sample = np.random.default_rng(2).standard_t(4, size=301)
    line = quartile_line(sample)
    slope = (line.y[1] - line.y[0]) / (line.x[1] - line.x[0])
    q1, q3 = np.quantile(sample, [0.25, 0.75])
    z1, z3 = norm.ppf([0.25, 0.75])
    assert line.y[0] + slope * (z1 - line.x[0]) == pytest.approx(q1, rel=1e-12)
    assert line.y[0] + slope * (z3 - line.x[0]) == pytest.approx(q3, rel=1e-12)


def test_cook_contours_have_the_cook_distance_of_their_level() -> None:
    p = 4
    lines = cook_contours(p, 0.3)
    assert [line.label for line in lines] == ["Cook's distance 0.5", "", "Cook's distance 1", ""]
    for line, level in zip(lines, (0.5, 0.5, 1.0, 1.0), strict=True):
        h, r = line.x, line.y
        assert h.min() == pytest.approx(0.003) and h.max() == pytest.approx(0.3)
        np.testing.assert_allclose(r**2 * h / (p * (1 - h)), level, rtol=1e-13)


def test_panels_from_points() -> None:
    rng = np.random.default_rng(3)
    fitted, resid, h = rng.normal(size=50), rng.normal(size=50), rng.uniform(0.01, 0.2, 50)
    cooks = resid**2 * h / (3 * (1 - h))
    rows = np.arange(100, 150)
    first = residuals_fitted(fitted, resid, rows)
    assert first.rows[first.labelled].tolist() == (100 + most_extreme(np.abs(resid))).tolist()
    np.testing.assert_array_equal(first.smooth[1], lowess(fitted, resid)[1])
    third = scale_location(fitted, resid, rows)
    np.testing.assert_array_equal(third.y, np.sqrt(np.abs(resid)))
    np.testing.assert_array_equal(third.smooth[1], lowess(fitted, np.sqrt(np.abs(resid)))[1])
    fourth = residuals_leverage(h, resid, cooks, 3, rows)
    assert fourth.labelled.tolist() == np.argsort(-cooks)[:3].tolist()
    assert fourth.lines[0].x.max() == pytest.approx(h.max())
    sampled = residuals_fitted(fitted, resid, rows, smooth_first=20)
    np.testing.assert_array_equal(sampled.smooth[1], lowess(fitted[:20], resid[:20])[1])


def test_summary_panels_with_every_row_are_the_in_memory_statistics() -> None:
    X, y = _data(300)
    model = LinearRegression().fit(X, y)
    full = influence(model, X, y)
    panels = summary_panels(influence_summary(model, (X, y), sample_size=300))
    first, qq, third, fourth = panels
    np.testing.assert_array_equal(first.rows, np.arange(300))
    np.testing.assert_allclose(first.x, full.fitted, rtol=1e-13)
    np.testing.assert_allclose(first.y, full.weighted_resid, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(third.y, np.sqrt(np.abs(full.student_resid_internal)), rtol=1e-12)
    np.testing.assert_allclose(fourth.x, full.leverage, rtol=1e-12)
    assert first.labelled.tolist() == most_extreme(np.abs(full.weighted_resid)).tolist()
    assert fourth.labelled.tolist() == most_extreme(full.cooks_distance).tolist()
    np.testing.assert_allclose(qq.y, np.sort(full.student_resid_internal), rtol=1e-12)
    np.testing.assert_allclose(qq.x, normal_quantiles(300), rtol=1e-13)
    assert first.band is None and first.note == ""


def test_summary_panels_of_a_sample_draw_the_top_rows_and_exact_bands() -> None:
    X, y = _data(3000, seed=4)
    y[1234] += 40.0  # an outlier: the most influential row, whether sampled or not
    model = LinearRegression().fit(X, y)
    full = influence(model, X, y)
    s = influence_summary(model, (X, y), sample_size=200, random_state=5)
    first, _, third, fourth = summary_panels(s)
    top = np.argsort(-full.cooks_distance, kind="stable")[:10]
    assert set(top) <= set(fourth.rows)
    assert fourth.rows[fourth.labelled].tolist() == top[:3].tolist()
    sample = s.sample
    np.testing.assert_array_equal(
        first.smooth[1], lowess(sample.fitted, sample.weighted_resid)[1]
    )  # the smoother through the uniform sample alone
    keep = s.bins.count > 0
    np.testing.assert_array_equal(first.band.middle, s.bins.resid_mean[keep])
    np.testing.assert_array_equal(third.band.upper, (s.bins.scale_mean + s.bins.scale_std)[keep])
    assert first.band.count.sum() == 3000
    assert "200 of 3,000 observations" in first.note


def test_coefficient_intervals_are_the_summary() -> None:
    X, y = _data(80)
    s = LinearRegression().fit(X, y).summary(level=0.9)
    ci = coefficient_intervals(s)
    assert ci.names == [c.name for c in s.coefficients] and ci.level == 0.9
    np.testing.assert_array_equal(ci.lower, [c.ci_lower for c in s.coefficients])
    np.testing.assert_array_equal(ci.upper, [c.ci_upper for c in s.coefficients])
    assert coefficient_intervals(s, intercept=False).names == ["x0", "x1", "x2"]


X3 = np.array([[1.0], [2.0], [3.0]])
Y3 = np.array([2.0, 4.0, 7.0])


def _gd(**options) -> GDRegressor:
    options = {"epochs": 3000, "standardize": False, "shuffle": False, "lr": 0.05, **options}
    return GDRegressor(**options).fit(X3, Y3)


def test_training_curve_is_the_history() -> None:
    model = _gd()
    curve = training_curve(model)
    np.testing.assert_array_equal(curve.epoch, model.history_.epoch)
    np.testing.assert_array_equal(curve.cost, model.history_.cost)
    assert curve.exact_cost == model.exact_.cost
    assert training_curve(_gd(compare_exact=False)).exact_cost is None


def test_training_curve_refused_without_history() -> None:
    model = _gd()
    del model.history_  # as a model read from a file
    with pytest.raises(InputError, match="no training history"):
        plot_training_curve(model)
    with pytest.raises(InputError, match="no training history"):
        training_curve(LinearRegression().fit(X3, Y3))


def test_gradient_path_cost_is_the_exact_quadratic_and_the_training_log() -> None:
    model = _gd()
    path = gradient_path(model, X3, Y3)
    assert path.names == ("W", "b")
    np.testing.assert_allclose(path.path[:, 0], np.ravel(model.history_.coef), rtol=0)
    exact = np.polyfit(X3[:, 0], Y3, 1)
    np.testing.assert_allclose(path.optimum, exact, rtol=1e-12)
    # The cost surface: the mean squared error evaluated directly at each grid point.
    gw, gb = np.meshgrid(*path.grid)
    direct = ((gw[..., None] * X3[:, 0] + gb[..., None] - Y3) ** 2).mean(axis=-1)
    np.testing.assert_allclose(path.cost, direct, rtol=1e-12, atol=1e-12)
    # Epoch i's cost is measured before its step, at epoch i-1's parameters: float32
    # training arithmetic, so agreement to float32's rounding of a few terms.
    np.testing.assert_allclose(path.path_cost[:-1], model.history_.cost[1:], rtol=1e-5)
    levels = contour_levels(path.optimum_cost, path.path_cost.max())
    np.testing.assert_array_equal(path.levels, levels)
    assert levels[-1] == path.path_cost.max() and np.all(np.diff(levels) > 0)
    np.testing.assert_allclose(
        (levels[1:] - path.optimum_cost) / (levels[:-1] - path.optimum_cost), 2.0, rtol=1e-12
    )


def test_gradient_path_one_parameter_and_weights() -> None:
    w = np.array([1.0, 2.0, 3.0])
    model = GDRegressor(epochs=2000, standardize=False, shuffle=False, fit_intercept=False,
                        lr=0.02).fit(X3, Y3, sample_weight=w)  # fmt: skip
    path = gradient_path(model, X3, Y3, w)
    assert path.names == ("W",)
    direct = (w * (path.grid[0][:, None] * X3[:, 0] - Y3) ** 2).sum(axis=1) / w.sum()
    np.testing.assert_allclose(path.cost, direct, rtol=1e-12)
    q = quadratic_cost(X3, Y3, w)
    assert q.optimum[0] == pytest.approx((w * X3[:, 0] * Y3).sum() / (w * X3[:, 0] ** 2).sum())


@pytest.mark.filterwarnings("ignore:GDRegressor spent its budget")
def test_gradient_path_refusals() -> None:
    X = np.column_stack([X3[:, 0], X3[:, 0] ** 2])
    model = GDRegressor(epochs=5, standardize=False).fit(X, Y3)
    with pytest.raises(InputError, match="one or two parameters; this model has 3"):
        gradient_path(model, X, Y3)
    huber = GDRegressor(epochs=5, loss="huber").fit(X3, Y3)
    with pytest.raises(InputError, match="squared error"):
        gradient_path(huber, X3, Y3)


def test_figures_are_drawn() -> None:
    X, y = _data(120)
    model = LinearRegression().fit(X, y)
    assert len(plot_diagnostics(model, (X, y)).axes) == 4
    assert len(plot_coefficients(model).axes) == 1
    gd = _gd()
    assert len(plot_training_curve(gd).axes) == 1
    assert len(plot_gradient_path(gd, X3, Y3).axes) == 2


def test_matplotlib_missing_is_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as when absent
    with pytest.raises(InputError) as caught:
        plot_training_curve(_gd())
    assert str(caught.value) == "plots need matplotlib: pip install 'torchlinreg[plot]'"


def test_pyplot_is_never_imported() -> None:
    code = (
        "import sys, numpy as np\n"
        "from torchlinreg import LinearRegression\n"
        "from torchlinreg.plots import plot_diagnostics, save_figure\n"
        "X = np.random.default_rng(0).normal(size=(40, 2)); y = X.sum(1) + X[:, 0] ** 2\n"
        "m = LinearRegression().fit(X, y)\n"
        "save_figure(plot_diagnostics(m, (X, y)), sys.argv[1])\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = f"{d}/d.png"
        subprocess.run([sys.executable, "-c", code, out], check=True)
        with open(out, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
