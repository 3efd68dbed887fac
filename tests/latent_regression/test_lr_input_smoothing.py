"""Smoothing of the input modes (``_input_smoothing.smooth_input_modes``): its evidence and posterior mean
against dense Gaussian algebra, and what it does in the estimator."""

import numpy as np

from skneuro.latent_regression import _input_smoothing as sm


def _problem(K, seed=0, n=40, sizes=((7, 5), (9, 6)), q=2):
    """Small subjects: centred data, loadings Ũ, noise variances ψ, positions."""
    rng = np.random.default_rng(seed)
    subjects = []
    for d, e in sizes:
        x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.5  # correlated inputs
        y = rng.normal(size=(n, e))
        subjects.append(
            {
                "x": x - x.mean(axis=0),
                "y": y - y.mean(axis=0),
                "u": rng.normal(size=(e, K)),
                "psi": rng.uniform(0.5, 2.0, size=e),
                "r": rng.uniform(size=(d, q)),
            }
        )
    return subjects


def _terms(subjects, current=None):
    return [
        sm._subject_terms(
            s["x"],
            s["r"],
            s["y"],
            s["u"] / s["psi"][:, None],
            s["u"].T @ (s["u"] / s["psi"][:, None]),
            np.zeros((s["x"].shape[1], s["u"].shape[1])) if current is None else current[i],
        )
        for i, s in enumerate(subjects)
    ]


def _design(s, k):
    """``vec(Y)`` (columns stacked) depends on mode k of ``P`` through ``ũ_k ⊗ X``."""
    return np.kron(s["u"][:, k : k + 1], s["x"])


def _dense_log_evidence(subjects, phis, a2, s2, k=0, others=None):
    """log N(vec Y − part of the other modes; 0, A (a² ΦΦᵀ + σ² I) Aᵀ + Ψ ⊗ I) of mode k, all subjects jointly.

    ``others[i]`` (d × K): subject i's modes; the columns other than k are held fixed.
    """
    A = np.zeros((sum(s["y"].size for s in subjects), sum(s["x"].shape[1] for s in subjects)))
    rows = cols = 0
    for s in subjects:
        block = _design(s, k)
        A[rows : rows + block.shape[0], cols : cols + block.shape[1]] = block
        rows, cols = rows + block.shape[0], cols + block.shape[1]
    phi = np.vstack(phis)
    noise = np.concatenate([np.repeat(s["psi"], len(s["y"])) for s in subjects])
    cov = A @ (a2 * phi @ phi.T + s2 * np.eye(len(phi))) @ A.T + np.diag(noise)
    parts = []
    for i, s in enumerate(subjects):
        data = s["y"].ravel(order="F")
        for m in range(s["u"].shape[1]):
            if m != k and others is not None:
                data = data - _design(s, m) @ others[i][:, m]
        parts.append(data)
    y = np.concatenate(parts)
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (y @ np.linalg.solve(cov, y) + logdet + len(y) * np.log(2 * np.pi))


def test_evidence_is_the_dense_marginal_likelihood_up_to_a_constant():
    subjects = _problem(K=1)
    terms = _terms(subjects)
    centres = np.vstack([s["r"] for s in subjects])
    span = np.ones(2)
    differences = []
    for length, a2, s2 in [(0.2, 0.5, 0.0), (0.2, 2.0, 0.1), (0.5, 0.3, 0.02), (1.0, 5.0, 0.3)]:
        to_features = sm._feature_map(centres, length * span)
        phis = [sm._features(s["r"], centres, length * span, to_features) for s in subjects]
        rotated = [t["vecs"].T @ phi for t, phi in zip(terms, phis)]
        ours = float(sm._log_evidence(*sm._evidence_terms(terms, rotated, 0, s2), a2))
        differences.append(ours - _dense_log_evidence(subjects, phis, a2, s2))
    # the terms left out depend on the data only, not on (ℓ, a², σ²)
    np.testing.assert_allclose(differences, differences[0], atol=1e-8)


def test_evidence_of_one_mode_holds_the_other_modes_at_their_current_values():
    """K = 2 with per-subject couplings of opposite signs: mode k's evidence is the dense one of the data
    less the other mode's part (the part that the pooled, diagonal coupling would hide)."""
    subjects = _problem(K=2, seed=2)
    rng = np.random.default_rng(5)
    current = [rng.normal(size=(s["x"].shape[1], 2)) for s in subjects]
    terms = _terms(subjects, current)
    centres = np.vstack([s["r"] for s in subjects])
    span = np.ones(2)
    for k in range(2):
        differences = []
        for length, a2, s2 in [(0.2, 0.5, 0.0), (0.5, 2.0, 0.1), (1.0, 0.3, 0.02)]:
            to_features = sm._feature_map(centres, length * span)
            phis = [sm._features(s["r"], centres, length * span, to_features) for s in subjects]
            rotated = [t["vecs"].T @ phi for t, phi in zip(terms, phis)]
            ours = float(sm._log_evidence(*sm._evidence_terms(terms, rotated, k, s2), a2))
            differences.append(ours - _dense_log_evidence(subjects, phis, a2, s2, k, current))
        np.testing.assert_allclose(differences, differences[0], atol=1e-8)


def test_posterior_mean_is_the_dense_gaussian_conditional_with_coupled_modes():
    subjects = _problem(K=2, seed=1)
    terms = _terms(subjects)
    assert abs(terms[0]["coupling"][0, 1]) > 0.1 * terms[0]["coupling"][0, 0]  # the modes are coupled
    centres = np.vstack([s["r"] for s in subjects])[::2]
    span = np.ones(2)
    hyper = [(0.3, 0.7, 0.05), (0.6, 1.5, 0.2)]  # (ℓ_k, a_k², σ_k²): each mode its own
    heights = sm._posterior_heights(terms, centres, span, hyper)

    # dense: unknowns β_k ~ N(0, a_k² I), η_sk ~ N(0, σ_k² I); vec Y_s = Σ_k (ũ_sk ⊗ X_s)(Φ_sk β_k + η_sk) + ε
    maps = [sm._feature_map(centres, length * span) for length, _, _ in hyper]
    y = np.concatenate([s["y"].ravel(order="F") for s in subjects])
    n_y = [s["y"].size for s in subjects]
    starts = np.concatenate([[0], np.cumsum(n_y)])
    cov = np.diag(np.concatenate([np.repeat(s["psi"], len(s["y"])) for s in subjects]))
    cross = []  # Cov(y, β_k)
    for k, ((length, a2, s2), m) in enumerate(zip(hyper, maps)):
        loads = np.zeros((len(y), m.shape[1]))
        for i, s in enumerate(subjects):
            design = _design(s, k)
            rows = slice(starts[i], starts[i + 1])
            loads[rows] = design @ sm._features(s["r"], centres, length * span, m)
            cov[rows, rows] += s2 * design @ design.T
        cov += a2 * loads @ loads.T
        cross.append(a2 * loads)
    solved = np.linalg.solve(cov, y)
    for k, m in enumerate(maps):
        np.testing.assert_allclose(heights[k], m @ (cross[k].T @ solved), rtol=1e-7, atol=1e-9)


def test_recovers_a_smooth_input_function_through_correlated_inputs():
    """Two subjects whose input modes are f(r) plus 10 % own deviations: f back within 5 % rms."""
    rng = np.random.default_rng(3)
    f = lambda r: np.column_stack([np.sin(4 * r[:, 0]) + r[:, 1], np.cos(3 * r[:, 1])])  # noqa: E731
    X, R, Y, U = [], [], [], []
    for d, e in ((250, 60), (300, 80)):
        r = rng.uniform(size=(d, 2))
        drives = rng.normal(size=(3000, 4))
        x = 0.6 * rng.normal(size=(3000, d)) + drives @ rng.normal(size=(4, d)) * 0.4  # correlated
        u = rng.normal(size=(e, 2))
        P = f(r) + 0.1 * rng.normal(size=(d, 2))
        X.append(x), R.append(r), U.append(u), Y.append(x @ P @ u.T + 0.3 * rng.normal(size=(3000, e)))
    c, w, m = sm.smooth_input_modes(X, R, [f(r) for r in R], Y, U, [np.full(len(u), 0.09) for u in U])
    test = rng.uniform(0.05, 0.95, size=(2000, 2))
    fitted = np.exp(-(((test[:, None] - c[None]) / w[None]) ** 2).sum(-1)) @ m
    truth = f(test)
    assert np.sqrt(((fitted - truth) ** 2).mean()) < 0.05 * np.sqrt((truth**2).mean())


def test_hyperparameters_are_searched_on_250_centres_and_the_mean_uses_400(monkeypatch):
    """550 training input neurons: 400 drawn as centres of the posterior mean, 250 of those for the
    search (whose cost grows as the cube of the centres); with 200 neurons all serve both."""
    rng = np.random.default_rng(5)
    searched = []

    def search(subjects, centres, span, reference):
        searched.append(centres)
        return [((0.3, 0.3), 1.0, 0.01)]

    monkeypatch.setattr(sm, "_search", search)
    for sizes, n_search, n_mean in (((250, 300), 250, 400), ((90, 110), 200, 200)):
        X, R, Y, U = [], [], [], []
        for d in sizes:
            x, r, u = rng.normal(size=(400, d)), rng.uniform(size=(d, 2)), rng.normal(size=(20, 1))
            X.append(x), R.append(r), U.append(u), Y.append(x @ np.sin(3 * r[:, :1]) @ u.T)
        c, w, m = sm.smooth_input_modes(X, R, [np.sin(3 * r[:, :1]) for r in R], Y, U, [np.full(20, 0.1)] * 2)
        centres = searched[-1]
        assert len(centres) == n_search and len(c) == n_mean and np.isfinite(m).all()
        assert set(map(tuple, centres)) <= set(map(tuple, c)) <= set(map(tuple, np.vstack(R)))
        sm.smooth_input_modes(X, R, [np.sin(3 * r[:, :1]) for r in R], Y, U, [np.full(20, 0.1)] * 2)
        np.testing.assert_array_equal(searched[-1], centres)  # the same random_state, the same subset


def test_input_smoothing_is_skipped_for_wide_subjects(monkeypatch):
    from skneuro.datasets import make_multi_subject_latent_regression
    from skneuro.latent_regression import MultiSubjectLatentRegressor, _building

    X, y = make_multi_subject_latent_regression(2, 200, n_inputs=12, n_outputs=10, random_state=0)
    n_bumps = {}
    for limit in (12, 11):
        monkeypatch.setattr(_building, "MAX_SMOOTHED_INPUTS", limit)
        est = MultiSubjectLatentRegressor(n_bumps=5, max_iter=5, random_state=0).fit(X, y)
        n_bumps[limit] = est.module_.input_predictors[0].c.shape[0]
    assert n_bumps[11] == 5  # the trained predictor: 5 bumps
    assert n_bumps[12] >= 24  # the smoothing: one bump per training input neuron (2 x 12) per length


def test_input_lengths_per_property(monkeypatch):
    """Input modes that change fast with the first property and not at all with the second: the
    second's length goes long, and the function comes back better than with one length for both
    (measured: rms error 0.012 against 0.038 of the function's rms; widths (0.37, 94))."""
    rng = np.random.default_rng(4)
    f = lambda r: np.sin(10 * r[:, :1])  # noqa: E731
    X, R, Y, U = [], [], [], []
    for d, e in ((250, 60), (300, 80)):
        r = rng.uniform(size=(d, 2))
        x = 0.6 * rng.normal(size=(2000, d)) + rng.normal(size=(2000, 4)) @ rng.normal(size=(4, d)) * 0.4
        u = rng.normal(size=(e, 1))
        P = f(r) + 0.1 * rng.normal(size=(d, 1))
        X.append(x), R.append(r), U.append(u), Y.append(x @ P @ u.T + 0.3 * rng.normal(size=(2000, e)))
    test = rng.uniform(0.05, 0.95, size=(2000, 2))
    truth = f(test)
    errors = {}
    for sweeps in (0, sm._ARD_SWEEPS):
        monkeypatch.setattr(sm, "_ARD_SWEEPS", sweeps)
        noise = [np.full(len(u), 0.09) for u in U]
        c, w, m = sm.smooth_input_modes(X, R, [f(r) for r in R], Y, U, noise, free_bumps=False)
        fitted = np.exp(-(((test[:, None] - c[None]) / w[None]) ** 2).sum(-1)) @ m
        errors[sweeps] = np.sqrt(((fitted - truth) ** 2).mean() / (truth**2).mean())
    assert w[0, 1] > 10 * w[0, 0] and w[0, 1] > 5.0  # the second property's length: several ranges
    assert errors[sm._ARD_SWEEPS] < 0.5 * errors[0], errors


def test_search_finds_each_modes_lengths(monkeypatch):
    """The search on a known evidence: three modes whose log evidence is −Σ_d (log ℓ_d − log ℓ*_kd)²
    with optima off the grids (one property at 50 ranges, one at 0.011, one at 0.3): each mode ends
    within a factor 2^⅛ of its own lengths per property (the last step is 2^¼), and no length
    outside [0.01, 100] is tried."""
    optima = np.array([[0.03, 50.0, 0.3], [3.0, 0.3, 0.011], [0.3, 0.3, 0.3]])
    span = np.array([1.0, 2.0, 0.5])
    tried = []
    monkeypatch.setattr(sm, "_feature_map", lambda centres, widths: widths)
    monkeypatch.setattr(sm, "_features", lambda r, centres, widths, to_features: np.atleast_2d(widths))

    def evidence(subjects, feats, k, s2, reference):
        lengths = feats[0][0] / span
        tried.append(lengths)
        return -float(((np.log(lengths) - np.log(optima[k])) ** 2).sum()) - (s2 - 0.01) ** 2, 1.0

    monkeypatch.setattr(sm, "_mode_evidence", evidence)
    hyper = sm._search([{"vecs": np.eye(1), "r": None}], None, span, np.ones(3))
    for k, (lengths, _, s2) in enumerate(hyper):
        assert len(lengths) == 3
        np.testing.assert_array_less(np.abs(np.log(lengths) - np.log(optima[k])), np.log(2.0) / 8 + 1e-9)
        assert s2 == 0.01
    tried = np.array(tried)
    assert tried.min() >= 0.01 - 1e-12 and tried.max() <= 100.0 + 1e-9


def test_one_property_keeps_the_isotropic_search(monkeypatch):
    """With one property there is nothing to tell apart: the search is the isotropic one, both sides."""
    from skneuro.latent_regression import _smoothing

    monkeypatch.setattr(sm, "_feature_map", lambda centres, widths: widths)
    monkeypatch.setattr(sm, "_features", lambda r, centres, widths, to_features: np.atleast_2d(widths))
    calls = []

    def evidence(subjects, feats, k, s2, reference):
        calls.append(float(feats[0][0][0]))
        # would go below the grid if it could; the deviations' ratio is best at 0.03
        return -((np.log(feats[0][0][0]) - np.log(0.003)) ** 2) - (s2 - 0.03) ** 2, 1.0

    monkeypatch.setattr(sm, "_mode_evidence", evidence)
    ((lengths, _, s2),) = sm._search([{"vecs": np.eye(1), "r": None}], None, np.ones(1), np.ones(1))
    assert lengths == (sm._INPUT_LENGTHS[0],) and min(calls) == sm._INPUT_LENGTHS[0]
    assert s2 == 0.03  # the deviations' ratio is searched with one property too
    rng = np.random.default_rng(0)
    q = rng.uniform(size=(80, 1))
    u = np.sin(5 * q) + 0.05 * rng.normal(size=q.shape)
    lengths, a2, s2 = _smoothing._hyperparameters(q, u, np.ones(1))
    _, length, iso_a2, iso_s2 = _smoothing._isotropic_hyperparameters(q, u, np.ones(1))
    assert lengths.tolist() == [length] and (a2, s2) == (iso_a2, iso_s2)
