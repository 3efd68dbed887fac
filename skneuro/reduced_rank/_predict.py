"""What a fitted reduced-rank estimator offers besides ``fit``: predictions, latents, likelihood, sampling."""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.utils.validation import check_array, check_is_fitted

from .._engine import make_generators
from ..utils._linalg import link_numpy
from ..utils._validation import check_range, named_validate_data

__all__ = ["ReducedRankPredictMixin"]


class ReducedRankPredictMixin:
    """Prediction-side methods of the reduced-rank estimators (numpy float64 on fitted attributes)."""

    def _params(self):
        p = self.w1_.shape[0]
        o1 = getattr(self, "o1_", np.zeros(p))
        g = getattr(self, "g_", np.ones(p))
        return o1, g

    def _check_X(self, X):
        check_is_fitted(self)
        X = named_validate_data(self, X, reset=False, dtype=np.float64)
        check_range("X", X, "float64")
        return X

    def _format(self, out):
        return out[:, 0] if self._y_ndim == 1 and out.ndim == 2 else out

    def latent_rep(self, X):
        """Intermediate quantities of the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        mean : ndarray (n_samples, n_targets)
            ``scaled + o2_``, equal to ``predict(X)``.
        scaled : ndarray (n_samples, n_targets)
            ``g_ ⊙ f(pre_activation)``.
        pre_activation : ndarray (n_samples, n_targets)
            ``latents w1_ᵀ + o1_``.
        latents : ndarray (n_samples, n_components)
            ``X w0_``.
        """
        X = self._check_X(X)
        o1, g = self._params()
        latents = X @ self.w0_
        pre = latents @ self.w1_.T + o1
        scaled = g * link_numpy(self._link, pre)
        mean = scaled + self.o2_
        return self._format(mean), self._format(scaled), self._format(pre), latents

    def predict(self, X):
        """Mean prediction ``g_ ⊙ f(X w0_ w1_ᵀ + o1_) + o2_`` (float64).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        return self.latent_rep(X)[0]

    def transform(self, X):
        """Latent projections ``X w0_`` of shape (n_samples, n_components)."""
        return self._check_X(X) @ self.w0_

    @property
    def _n_features_out(self):
        return self.w0_.shape[1]

    def log_likelihood(self, X, y):
        """Mean per-sample Gaussian log-likelihood of ``y`` given ``X`` (with the 2π term).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        float
        """
        mean = self.latent_rep(X)[0]
        try:
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"y: {exc}") from exc
        if y.shape != mean.shape:
            raise ValueError(f"y must have shape {mean.shape}; got {y.shape}.")
        resid = (y - mean).reshape(len(y), -1)
        per_sample = np.sum(0.5 * np.log(self.noise_variance_) + resid**2 / (2.0 * self.noise_variance_), axis=1)
        return float(-per_sample.mean() - 0.5 * len(self.noise_variance_) * np.log(2.0 * np.pi))

    def sample(self, X, random_state=None):
        """Draw ``predict(X) + N(0, diag(noise_variance_))`` from a local generator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        random_state : int, RandomState, Generator or None

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        mean = self.predict(X)
        _, numpy_gen = make_generators(random_state)
        noise = numpy_gen.standard_normal(size=(mean.shape[0], len(self.noise_variance_))) * np.sqrt(
            self.noise_variance_
        )
        return mean + self._format(noise)

    def vary_latents(self, p_mat, mean_input, latent_values):
        """Predictions when the latents vary in a subspace and the rest stays at ``mean_input``.

        Parameters
        ----------
        p_mat : array-like of shape (n_components, m)
            Orthonormal columns spanning the varied subspace of the latent space.
        mean_input : array-like of shape (n_features,)
            Input that fixes the latents outside the subspace.
        latent_values : array-like of shape (n_points, m) or (n_points,) when m = 1
            Coordinates in the subspace.

        Returns
        -------
        mean : ndarray (n_points, n_targets)
        w0_proj : ndarray (n_features, m)
            ``w0_ p_mat``.
        w1_proj : ndarray (n_targets, m)
            ``w1_ p_mat``.
        """
        check_is_fitted(self)
        k = self.w0_.shape[1]
        p_mat = np.asarray(p_mat, dtype=np.float64)
        if p_mat.ndim != 2 or p_mat.shape[0] != k:
            raise ValueError(f"p_mat must have shape (n_components={k}, m); got {p_mat.shape}.")
        if not np.allclose(p_mat.T @ p_mat, np.eye(p_mat.shape[1]), atol=1e-6):
            raise ValueError("p_mat must have orthonormal columns (p_mat.T @ p_mat == I).")
        mean_input = np.asarray(mean_input, dtype=np.float64).reshape(-1)
        if mean_input.shape[0] != self.w0_.shape[0]:
            raise ValueError(f"mean_input must have {self.w0_.shape[0]} entries; got {mean_input.shape[0]}.")
        latent_values = np.asarray(latent_values, dtype=np.float64)
        if latent_values.ndim == 1 and p_mat.shape[1] == 1:
            latent_values = latent_values[:, None]
        if latent_values.ndim != 2 or latent_values.shape[1] != p_mat.shape[1]:
            raise ValueError(f"latent_values must have shape (n_points, {p_mat.shape[1]}); got {latent_values.shape}.")
        o1, g = self._params()
        w0_proj, w1_proj = self.w0_ @ p_mat, self.w1_ @ p_mat
        fixed = self.w1_ @ (np.eye(k) - p_mat @ p_mat.T) @ self.w0_.T @ mean_input
        mean = g * link_numpy(self._link, latent_values @ w1_proj.T + fixed + o1) + self.o2_
        return self._format(mean), w0_proj, w1_proj

    def align_signs(self, other):
        """Copy of ``self`` with component signs matched to ``other``.

        Column ``c`` of ``w0_`` and ``w1_`` is negated where that brings it closer (in
        squared distance) to ``other``'s; predictions are unchanged.

        Parameters
        ----------
        other : fitted reduced-rank estimator with the same shapes

        Returns
        -------
        aligned : estimator
        """
        check_is_fitted(self)
        check_is_fitted(other)
        if getattr(other, "w0_", np.empty(0)).shape != self.w0_.shape or other.w1_.shape != self.w1_.shape:
            raise ValueError("other must be a fitted reduced-rank estimator with the same w0_ and w1_ shapes.")
        aligned = copy.deepcopy(self)
        keep = np.sum((self.w0_ - other.w0_) ** 2, 0) + np.sum((self.w1_ - other.w1_) ** 2, 0)
        flip = np.sum((self.w0_ + other.w0_) ** 2, 0) + np.sum((self.w1_ + other.w1_) ** 2, 0)
        signs = np.where(flip < keep, -1.0, 1.0)
        aligned.w0_ = self.w0_ * signs
        aligned.w1_ = self.w1_ * signs
        with torch.no_grad():
            for param in (aligned.module_.w0, aligned.module_.w1):
                param.mul_(torch.as_tensor(signs, dtype=param.dtype, device=param.device))
        return aligned
