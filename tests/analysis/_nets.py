"""Small networks shared by the analysis tests."""

import warnings

import numpy as np
import torch

from skneuro.rnn import LeakyRNN, MultiRegionRNNRegressor

F64 = torch.float64
NAN = float("nan")

CONFIG = {
    "regions": [
        {"name": "a", "n_units": 2},
        {"name": "b1", "n_units": 2, "parent": "p", "sign": "excitatory"},
        {"name": "b2", "n_units": 1, "parent": "p", "sign": "inhibitory"},
        {"name": "c", "n_units": 3},
    ],
    "inputs": [{"name": "in", "n_units": 2}],
    "connections": [{"source": s, "target": t} for s in ("a", "b1", "b2", "c") for t in ("a", "b1", "b2", "c")]
    + [{"source": "in", "target": t} for t in ("a", "c")],
}


def leaky(n_in, n_rec, activation="linear", W_rec=None, W_in=None, b_rec=None, dt=10.0, tau=100.0, **kw):
    """A float64 LeakyRNN with the given raw weights."""
    net = LeakyRNN(n_in, n_rec, 0, activation=activation, dt=dt, tau=tau, dtype=F64, **kw)
    with torch.no_grad():
        for name, value in (("W_rec", W_rec), ("W_in", W_in), ("b_rec", b_rec)):
            if value is not None:
                getattr(net, name).copy_(torch.as_tensor(np.asarray(value, dtype=np.float64)))
    return net


def random_net(activation, n_in=3, n_rec=6, seed=0, signed=True, masked=True):
    """Random raw weights; E/I/mixed source units and random 0/1 masks."""
    rng = np.random.default_rng(seed)
    kw = {}
    if signed:
        kw["rec_signs"] = [1.0, 1.0, -1.0, -1.0, NAN, NAN][:n_rec]
        kw["input_signs"] = [1.0, -1.0, NAN][:n_in]
    if masked:
        kw["rec_mask"] = (rng.random((n_rec, n_rec)) < 0.7).astype(float)
        kw["input_mask"] = (rng.random((n_rec, n_in)) < 0.7).astype(float)
    return leaky(
        n_in,
        n_rec,
        activation,
        W_rec=rng.normal(size=(n_rec, n_rec)),
        W_in=rng.normal(size=(n_rec, n_in)),
        b_rec=rng.normal(size=n_rec) * 0.3,
        **kw,
    )


def fit_multi_region(activation="tanh", seed=0):
    """A MultiRegionRNNRegressor fitted for one iteration on tiny random data."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(4, 5, 2)), rng.normal(size=(4, 5, 1))
    est = MultiRegionRNNRegressor(CONFIG, max_iter=1, activation=activation, batch_size=4, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est, X, y


def effective(net):
    """Effective (W_in, W_rec, b_rec) as float64 numpy."""
    with torch.no_grad():
        W_in, W_rec, _ = net.effective_weights()
        return W_in.double().numpy(), W_rec.double().numpy(), net.b_rec.double().numpy()
