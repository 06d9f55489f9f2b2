"""Inference against statsmodels (OLS/WLS, nonrobust, HC0–HC3, cluster) and NIST."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

sm = pytest.importorskip("statsmodels.api")

from torchlinreg import InputError, LinearRegression, Ridge  # noqa: E402

from .test_nist import NAMES, load  # noqa: E402


def design(seed: int):  # type: ignore[no-untyped-def]
    """Varied shapes, scales, offsets, conditioning, weights and intercepts."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([15, 40, 200, 1500]))
    p = int(rng.integers(1, min(8, n - 3)))
    X = rng.normal(size=(n, p)) * 10.0 ** rng.uniform(-2, 3, size=p) + rng.uniform(-50, 50, size=p)
    if p > 1 and seed % 4 == 0:  # strongly correlated pair (statsmodels stays accurate)
        X[:, 1] = X[:, 0] * 2 + 0.3 * rng.normal(size=n) * X[:, 0].std()
    beta = rng.normal(size=p)
    y = 3 + X @ beta + rng.normal(size=n) * 10.0 ** rng.uniform(-3, 1)
    w = rng.uniform(0.2, 5, size=n) if seed % 2 else None
    intercept = seed % 5 != 3
    groups = rng.integers(0, max(2 * (p + 2), n // 10), size=n)  # more clusters than slopes
    return X, y, w, intercept, groups


def reference(X, y, w, intercept, cov_type, groups):  # type: ignore[no-untyped-def]
    exog = sm.add_constant(X, has_constant="add") if intercept else X
    model = sm.WLS(y, exog, weights=w) if w is not None else sm.OLS(y, exog)
    kwargs = {"cov_kwds": {"groups": groups}} if cov_type == "cluster" else {}
    return model.fit(cov_type=cov_type, **kwargs)


EPS = float(np.finfo(np.float64).eps)


def close(a, b, rtol=1e-8) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=0
    )


def close_p(ours, ref, t_ref, rtol_t, dist) -> None:  # type: ignore[no-untyped-def]
    """p-values, given that the statistic behind them (t, z or F) is accurate to rtol_t.

    A p-value is as accurate as its statistic allows: d log p / dt = −f(t)/S(t) (the
    hazard of the distribution), so |Δ log p| ≤ h(t)·|t|·rtol_t to first order; twice
    that covers the second order. Near t = 0 this is 2φ(0)·|Δt| (p ≈ 1); in the far tail
    h(t)·t ≈ t² (normal) or ≈ ν (Student t, F): p = 1e-88 with t ≈ 20 is only good to
    ~400·rtol_t relative, whatever its number of digits. 1e-13 covers the special
    functions' own rounding. Below 1e-300 float64 keeps no relative precision (subnormal
    numbers, then 0): there both sides must be that small.
    """
    ours, ref, t = (np.asarray(v, float) for v in (ours, ref, t_ref))
    t = np.abs(t)  # two-sided p = 2 S(|t|); F is positive
    hazard = np.exp(dist.logpdf(t) - dist.logsf(t))
    tol = 2 * hazard * t * rtol_t + 1e-13
    normal = ref > 1e-300
    err = np.abs(np.log(ours[normal]) - np.log(ref[normal]))
    assert np.all(err <= tol[normal]), (ours, ref, tol)
    assert np.all(ours[~normal] < 1e-290), (ours, ref)


@functools.cache
def exact(seed: int) -> dict:  # type: ignore[type-arg]
    """design(seed)'s statistics in 40-digit arithmetic (see :func:`exact_statistics`)."""
    return exact_statistics(*design(seed), digits=40)


def exact_statistics(X, y, w, intercept, groups, digits, theta=None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The statistics in ``digits``-digit arithmetic, by statsmodels' conventions
    (checked against statsmodels itself in the test): the oracle where statsmodels is
    the less accurate side (its cluster standard errors are off by up to 7e-9 here).
    ``theta`` (intercept first) replaces the exact solution in the residuals, to judge
    a covariance computation apart from the solve."""
    import mpmath as mp

    mp.mp.dps = digits
    mpf = np.vectorize(mp.mpf, otypes=[object])
    n = len(y)
    A = mpf(np.c_[np.ones(n), X] if intercept else X)
    Y, W = mpf(y), mpf(np.ones(n) if w is None else w)
    k = A.shape[1]
    Aw = A * W[:, None]
    G = np.array((mp.matrix((Aw.T @ A).tolist()) ** -1).tolist(), dtype=object)
    theta = G @ (Aw.T @ Y) if theta is None else mpf(np.asarray(theta, dtype=float))
    e = Y - A @ theta
    rss = (W * e * e).sum()
    ybar = (W * Y).sum() / W.sum() if intercept else 0
    tss = (W * (Y - ybar) ** 2).sum()
    S = A * (W * e)[:, None]  # scores wᵢeᵢaᵢ
    h = np.einsum("ij,jk,ik->i", Aw, G, A)  # leverages
    ids = np.unique(groups, return_inverse=True)[1].reshape(-1)
    n_groups = int(ids.max()) + 1
    sums = np.array([[mp.mpf(0)] * k for _ in range(n_groups)], dtype=object)
    for i in range(n):
        sums[ids[i]] += S[i]
    meats = {
        "HC0": (S.T @ S, 1), "HC1": (S.T @ S, mp.mpf(n) / (n - k)),
        "HC2": ((S * (1 / (1 - h))[:, None]).T @ S, 1),
        "HC3": ((S * (1 / (1 - h) ** 2)[:, None]).T @ S, 1),
        "cluster": (sums.T @ sums, mp.mpf(n_groups) / (n_groups - 1) * (n - 1) / (n - k)),
    }  # fmt: skip
    covs = {"nonrobust": G * (rss / (n - k))}
    covs.update({ct: G @ M @ G * f for ct, (M, f) in meats.items()})
    c = int(intercept)
    df_model, df_resid = k - c, n - k
    fvalues = {"nonrobust": (tss - rss) / df_model / (rss / df_resid)}
    for ct, V in covs.items():
        if ct != "nonrobust":
            b = theta[c:]
            Vs = mp.matrix(V[c:, c:].tolist())
            fvalues[ct] = (mp.matrix(b.tolist()).T * Vs**-1 * mp.matrix(b.tolist()))[0] / len(b)
    llf = -mp.mpf(n) / 2 * (mp.log(2 * mp.pi) + mp.log(rss / n) + 1) + sum(mp.log(v) for v in W) / 2
    r2 = 1 - rss / tss
    yn, en = mp.sqrt((W * Y * Y).sum()), mp.sqrt(rss)
    return {
        "theta": np.array(theta, dtype=float),
        "cov": {ct: np.array(V, dtype=float) for ct, V in covs.items()},
        "se": {ct: np.array([float(mp.sqrt(V[i, i])) for i in range(k)]) for ct, V in covs.items()},
        "f": {ct: float(v) for ct, v in fvalues.items()},
        "sigma": float(mp.sqrt(rss / df_resid)),
        "r2": float(r2),
        "adj_r2": float(1 - (n - c) / mp.mpf(df_resid) * (1 - r2)),
        "llf": float(llf),
        "aic": float(-2 * llf + 2 * k),
        "bic": float(-2 * llf + mp.log(n) * k),
        "df": (df_model, df_resid, n_groups - 1),
        "y_over_e": float(yn / en),
    }


def our_tolerance(model, ref) -> float:  # type: ignore[no-untyped-def]
    """Our error bound: a backward-stable QR least-squares solve gets the residual to
    ≈ ε·(1 + 2κ)·‖y‖/‖e‖ relative and (AᵀWA)⁻¹ to ≈ ε·κ (Higham, Accuracy and
    Stability, §20.2), κ of the column-scaled design (QR does not see column scales).
    Every statistic here is a smooth function of those; the constant 16·(p + 1) covers
    the dimension-dependent factors of the bounds."""
    kappa = model.condition_number_
    p = len(ref["theta"])
    return 16 * (p + 1) * EPS * (1 + 2 * kappa) * (1 + ref["y_over_e"])


# statsmodels is the oracle of the conventions (df corrections, t or normal, CRV1):
# it must agree with the 40-digit reference to 1e-6. That is far above its rounding
# on these designs (≤ 7e-9) and far below the smallest convention difference
# (1/n ≥ 6.7e-4 for n ≤ 1,500; G/(G − 1) − 1 ≥ 6.7e-3; t against normal quantiles ≥ 1e-3).
CONVENTIONS = 1e-6


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"])
@pytest.mark.parametrize("seed", range(24))
def test_every_statistic_matches_statsmodels(seed, cov_type) -> None:
    from scipy import stats

    X, y, w, intercept, groups = design(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearRegression(fit_intercept=intercept).fit(X, y, sample_weight=w)
    kwargs = {} if cov_type == "nonrobust" else {"X": X, "y": y, "sample_weight": w}
    if cov_type == "cluster":
        kwargs["groups"] = groups
    s = model.summary(level=0.9, cov_type=cov_type, **kwargs)
    ref, sm_fit = exact(seed), reference(X, y, w, intercept, cov_type, groups)
    tol = our_tolerance(model, ref)
    d = s.to_dict()
    coefs = d["coefficients"]
    assert [c["name"] for c in coefs] == (["intercept"] if intercept else []) + [
        f"x{j}" for j in range(X.shape[1])
    ]
    df_model, df_resid, df_groups = ref["df"]
    robust = cov_type != "nonrobust"
    dist = stats.norm() if robust else stats.t(df_resid)
    level_q = dist.ppf(0.95)
    theta, se = ref["theta"], ref["se"][cov_type]
    t_ref = theta / se
    f_ref, f_df = ref["f"][cov_type], df_groups if cov_type == "cluster" else df_resid
    f_dist = stats.f(df_model, f_df)
    for side, rtol in (("ours", tol), ("statsmodels", CONVENTIONS)):
        if side == "ours":
            got = {
                "params": [c["estimate"] for c in coefs], "bse": [c["std_error"] for c in coefs],
                "t": [c["t"] for c in coefs], "p": [c["p_value"] for c in coefs],
                "lo": [c["ci_lower"] for c in coefs], "hi": [c["ci_upper"] for c in coefs],
                "cov": s.cov, "sigma": d["sigma"], "r2": d["r_squared"],
                "adj": d["adj_r_squared"], "llf": d["log_likelihood"], "aic": d["aic"],
                "bic": d["bic"], "f": d["f_statistic"], "f_p": d["f_p_value"],
            }  # fmt: skip
        else:
            ci = sm_fit.conf_int(alpha=0.1)
            got = {
                "params": sm_fit.params, "bse": sm_fit.bse, "t": sm_fit.tvalues,
                "p": sm_fit.pvalues, "lo": ci[:, 0], "hi": ci[:, 1],
                "cov": np.asarray(sm_fit.cov_params()), "sigma": np.sqrt(sm_fit.scale),
                "r2": sm_fit.rsquared, "adj": sm_fit.rsquared_adj, "llf": sm_fit.llf,
                "aic": sm_fit.aic, "bic": sm_fit.bic, "f": sm_fit.fvalue, "f_p": sm_fit.f_pvalue,
            }  # fmt: skip
        close(got["params"], theta, rtol)
        close(got["bse"], se, rtol)
        close(got["t"], t_ref, 2 * rtol)  # t = θ/se
        close_p(got["p"], 2 * dist.sf(np.abs(t_ref)), t_ref, 2 * rtol, dist)
        # θ ∓ q·se: judged on the scale of its terms, which may cancel.
        for key, sign in (("lo", -1), ("hi", 1)):
            err = np.abs(np.asarray(got[key]) - (theta + sign * level_q * se))
            assert np.all(err <= rtol * (np.abs(theta) + level_q * se)), side
        # Off-diagonal covariances can cancel: judge them on the scale of the correlation.
        cov = ref["cov"][cov_type]
        scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
        assert np.max(np.abs(got["cov"] - cov) / scale) < 2 * rtol, side
        close(got["sigma"], ref["sigma"], rtol)
        # R² = 1 − RSS/TSS: its error is RSS's, relative to 1 − R², plus R²'s own rounding.
        assert abs(got["r2"] - ref["r2"]) <= rtol * (1 - ref["r2"]) + EPS, side
        assert abs(got["adj"] - ref["adj_r2"]) <= rtol * abs(1 - ref["adj_r2"]) + EPS, side
        # ℓ = −n/2·log(RSS) + …: Δℓ = n/2·ΔRSS/RSS, on the scale of n.
        for key, value in (("llf", ref["llf"]), ("aic", ref["aic"]), ("bic", ref["bic"])):
            assert abs(got[key] - value) <= rtol * len(y), (side, key)
        close(got["f"], f_ref, 4 * rtol)  # F involves θ twice and the covariance
        close_p([got["f_p"]], [f_dist.sf(f_ref)], [f_ref], 4 * rtol, f_dist)
    assert d["n"] == sm_fit.nobs and d["df_model"] == sm_fit.df_model
    assert d["df_resid"] == sm_fit.df_resid == df_resid
    assert d["f_df_denominator"] == f_df
    # κ₂ by two SVDs of the same matrix: the smallest singular value is accurate to
    # ε·σ_max absolute, so κ to ≈ ε·κ relative (with a factor for the dimensions).
    kappa = sm_fit.condition_number
    close(d["condition_number"], kappa, 16 * (X.shape[1] + 1) * EPS * kappa)
    assert d["cov_type"] == cov_type and d["level"] == 0.9


@pytest.mark.parametrize("name", NAMES)
def test_nist_certified_standard_deviations_residual_sd_and_r2(name) -> None:
    import json

    from .test_nist import DATA, lre

    X, y, intercept, _ = load(name)
    cert = json.loads((DATA / f"{name}.json").read_text())["certified"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = LinearRegression(fit_intercept=intercept).fit(X, y).summary()
    need = 6.0 if name == "Filip" else 9.0
    cert_sd = np.array(cert["coef_sd"], dtype=float)
    if np.all(cert_sd == 0):  # exact fits (Wampler1, 2): decided exact, so no σ and SEs
        assert s.sigma is None and all(c.std_error is None for c in s.coefficients)
        assert any(note.startswith("the fit is exact") for note in s.notes)
    else:
        sd = np.array([c.std_error for c in s.coefficients])
        assert lre(sd, cert_sd) >= need
        assert lre(np.array([s.sigma]), np.array([cert["residual_sd"]])) >= need
    assert lre(np.array([s.r_squared]), np.array([cert["r_squared"]])) >= need


def test_prediction_intervals_match_statsmodels(rng) -> None:
    X = rng.normal(size=(120, 3)) * [1, 3, 10]
    y = X @ [1.0, -2.0, 0.3] + 2 + rng.normal(size=120)
    w = rng.uniform(0.5, 2, size=120)
    model = LinearRegression().fit(X, y, sample_weight=w)
    new = rng.normal(size=(7, 3)) * [1, 3, 10]
    frame = (
        sm.WLS(y, sm.add_constant(X), weights=w)
        .fit()
        .get_prediction(sm.add_constant(new))
        .summary_frame(alpha=0.1)
    )
    conf = model.predict(new, interval="confidence", level=0.9)
    pred = model.predict(new, interval="prediction", level=0.9)
    close(conf.mean, frame["mean"], 1e-10)
    close(conf.se, frame["mean_se"], 1e-10)
    close(conf.lower, frame["mean_ci_lower"], 1e-10)
    close(conf.upper, frame["mean_ci_upper"], 1e-10)
    close(pred.lower, frame["obs_ci_lower"], 1e-10)
    close(pred.upper, frame["obs_ci_upper"], 1e-10)


def test_summary_forms_and_text(rng) -> None:
    X = rng.normal(size=(50, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=50)
    s = LinearRegression().fit(X, y).summary()
    frame = s.to_frame()
    assert list(frame.index) == ["intercept", "x0", "x1"]
    assert list(frame.columns) == ["estimate", "std_error", "t", "p_value", "ci_lower", "ci_upper"]
    text = str(s)
    assert text.startswith("OLS regression of y   (n = 50, covariance: nonrobust)")
    assert "Residual standard error:" in text and "F-statistic:" in text
    keys = {"n", "df_model", "df_resid", "sigma", "r_squared", "adj_r_squared", "f_statistic",
            "f_p_value", "log_likelihood", "aic", "bic", "condition_number", "cov_type", "level",
            "coefficients", "notes"}  # fmt: skip
    assert keys <= set(s.to_dict())


def test_no_residual_degrees_of_freedom_reports_why(rng) -> None:
    X, y = rng.normal(size=(3, 2)), rng.normal(size=3)
    d = LinearRegression().fit(X, y).summary().to_dict()
    assert d["sigma"] is None and d["df_resid"] is None and d["adj_r_squared"] is None
    assert all(c["std_error"] is None and c["p_value"] is None for c in d["coefficients"])
    assert any("no residual degrees of freedom" in note for note in d["notes"])


def test_ridge_reports_only_what_is_meaningful(rng) -> None:
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=60)
    d = Ridge(alpha=2.0).fit(X, y).summary().to_dict()
    assert d["r_squared"] is not None and d["f_statistic"] is None and d["sigma"] is None
    assert all(c["std_error"] is None for c in d["coefficients"])
    assert any(note.startswith("ridge:") for note in d["notes"])


def test_bad_summary_requests(rng) -> None:
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    model = LinearRegression().fit(X, y)
    with pytest.raises(InputError, match="level must be between 0 and 1"):
        model.summary(level=1.5)
    with pytest.raises(InputError, match="unknown cov_type 'HC9'; choose one of nonrobust, HC0"):
        model.summary(cov_type="HC9")
    with pytest.raises(InputError, match="needs a second pass over the training data"):
        model.summary(cov_type="HC3")
    with pytest.raises(InputError, match="needs groups="):
        model.summary(cov_type="cluster", X=X, y=y)
    with pytest.raises(InputError, match="interval must be one of confidence, prediction"):
        model.predict(X, interval="credible")


def test_multi_target_summary_is_one_per_target(rng) -> None:
    X = rng.normal(size=(80, 2))
    Y = np.c_[X @ [1.0, 2.0], X @ [-1.0, 0.5]] + rng.normal(size=(80, 2))
    out = LinearRegression().fit(X, Y).summary()
    assert [s.target for s in out] == ["y0", "y1"]
    for j, s in enumerate(out):
        ref = sm.OLS(Y[:, j], sm.add_constant(X)).fit()
        close([c.std_error for c in s.coefficients], ref.bse)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC3"])
def test_nearly_collinear_design_against_high_precision(cov_type) -> None:
    """Where a pinv-based computation loses digits (x1 = 2·x0 + 1e-5·noise), compare
    with the exact-data answer in 60-digit arithmetic."""
    import mpmath as mp

    rng = np.random.default_rng(7)
    n = 60
    x0 = rng.normal(size=n) * 3 + 20
    X = np.c_[x0, 2 * x0 + 1e-5 * rng.normal(size=n), rng.normal(size=n)]
    y = 1 + X @ [1.0, 0.5, -2.0] + rng.normal(size=n)
    kwargs = {} if cov_type == "nonrobust" else {"X": X, "y": y}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = LinearRegression().fit(X, y).summary(cov_type=cov_type, **kwargs)
    mp.mp.dps = 60
    A = mp.matrix([[1, *map(mp.mpf, row)] for row in X.tolist()])
    Y = mp.matrix([mp.mpf(v) for v in y.tolist()])
    G = (A.T * A) ** -1
    theta = G * (A.T * Y)
    e = Y - A * theta
    if cov_type == "nonrobust":
        cov = G * ((e.T * e)[0] / (n - 4))
    else:
        h = [(A[i, :] * G * A[i, :].T)[0] for i in range(n)]
        c = [e[i] ** 2 / ((1 - h[i]) ** 2 if cov_type == "HC3" else 1) for i in range(n)]
        M = mp.matrix(4, 4)
        for i in range(n):
            M += c[i] * (A[i, :].T * A[i, :])
        cov = G * M * G
    exact = np.array([float(mp.sqrt(cov[j, j])) for j in range(4)])
    ours = np.array([c.std_error for c in s.coefficients])
    np.testing.assert_allclose(ours, exact, rtol=1e-9)


def test_cli_summary_matches_statsmodels_and_is_kept_in_the_model(tmp_path, capsys) -> None:
    import json

    from torchlinreg.cli import main

    rng = np.random.default_rng(11)
    n = 150
    X = rng.normal(size=(n, 2)) * [2, 5]
    g = rng.integers(0, 12, size=n)
    y = X @ [1.0, -0.5] + 3 + rng.normal(size=n) * (1 + np.abs(X[:, 0]))
    path = tmp_path / "d.csv"
    path.write_text(
        "a,b,g,y\n" + "\n".join(f"{a},{b},{k},{t}" for (a, b), k, t in zip(X, g, y, strict=True))
    )
    model = tmp_path / "m.safetensors"
    for cov_type, extra in (("HC3", []), ("cluster", ["--cluster", "g"])):
        code = main(["fit", str(path), "--target", "y", "--features", "a,b", "--cov-type", cov_type,
                     *extra, "--json", "-o", str(model)])  # fmt: skip
        assert code == 0
        d = json.loads(capsys.readouterr().out)["summary"][0]
        kw = {"cov_kwds": {"groups": g}} if cov_type == "cluster" else {}
        ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type=cov_type, **kw)
        close([c["std_error"] for c in d["coefficients"]], ref.bse)
        close(d["f_statistic"], ref.fvalue)
    assert main(["summary", str(model), "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)["summary"][0]
    assert stored["cov_type"] == "cluster" and stored["coefficients"][1]["name"] == "a"
    assert main(["summary", str(model)]) == 0
    assert "OLS regression of y   (n = 150, covariance: cluster)" in capsys.readouterr().out
    assert main(["fit", str(path), "--target", "y", "--cov-type", "cluster"]) == 2
    assert "--cov-type cluster needs --cluster COL" in capsys.readouterr().err


def test_streamed_and_partial_fits_give_the_same_summary(rng) -> None:
    X = rng.normal(size=(300, 3)) * [1, 10, 100] + [5, -5, 50]
    y = X @ [1.0, 0.1, 0.01] + 2 + rng.normal(size=300)
    whole = LinearRegression().fit(X, y).summary().to_dict()
    chunks = [(X[i : i + 37], y[i : i + 37]) for i in range(0, 300, 37)]
    streamed = LinearRegression().fit_chunks(chunks).summary().to_dict()
    partial = LinearRegression()
    for c in chunks:
        partial.partial_fit(*c)
    for other in (streamed, partial.summary().to_dict()):
        close(
            [c["std_error"] for c in other["coefficients"]],
            [c["std_error"] for c in whole["coefficients"]],
            1e-10,
        )
        close([other["sigma"], other["r_squared"], other["f_statistic"], other["log_likelihood"]],
              [whole["sigma"], whole["r_squared"], whole["f_statistic"], whole["log_likelihood"]], 1e-10)  # fmt: skip


def test_filip_summary_notes_the_conditioning() -> None:
    X, y, _, _ = load("Filip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = LinearRegression().fit(X, y).summary().to_dict()
    assert any("badly conditioned" in note for note in d["notes"])
    assert np.asarray(d["cov"]).shape == (11, 11)
