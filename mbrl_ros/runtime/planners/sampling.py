"""Gaussian distribution over action sequences, shared by CEM and MPPI.

Holds a per-step mean and std [H, A] (the warm start), draws clipped samples
with white or power-law ("colored", iCEM) noise along time, and shifts itself
by one step when the control step advances.
"""
from __future__ import annotations

import numpy as np

from mbrl_ros.runtime.planners.base import ActionBounds


def powerlaw_noise(rng: np.random.Generator, beta: float, shape: tuple[int, int, int]) -> np.ndarray:
    """Unit-variance Gaussian noise [N, H, A] whose power spectrum along H goes as 1/f^beta.

    beta = 0 is white noise; iCEM uses beta ~ 2-3 so successive actions in a
    sequence are correlated (smoother, more exploratory sequences). Built in the
    frequency domain like Timmer & Koenig (1995), the method of the
    `colorednoise` package, normalised so every sample has unit variance.
    """
    n, horizon, action_dim = shape
    if beta == 0.0 or horizon < 2:
        return rng.standard_normal(shape, dtype=np.float32)
    freqs = np.fft.rfftfreq(horizon)
    freqs[0] = 1.0 / horizon  # the lowest representable frequency stands in for DC
    scale = freqs ** (-beta / 2.0)
    # Exact std of the signal built below (irfft scales by 1/H): the DC and
    # Nyquist bins contribute 2 s^2 each, every other bin 4 s^2 (real + imag).
    bin_var = 4.0 * scale ** 2
    bin_var[0] = 2.0 * scale[0] ** 2
    if horizon % 2 == 0:
        bin_var[-1] = 2.0 * scale[-1] ** 2
    sigma = np.sqrt(bin_var.sum()) / horizon
    spec_shape = (n, action_dim, len(freqs))
    real = rng.standard_normal(spec_shape) * scale
    imag = rng.standard_normal(spec_shape) * scale
    if horizon % 2 == 0:  # the Nyquist bin of a real signal is real
        imag[..., -1] = 0.0
        real[..., -1] *= np.sqrt(2.0)
    imag[..., 0] = 0.0  # the DC bin is real too
    real[..., 0] *= np.sqrt(2.0)
    noise = np.fft.irfft(real + 1j * imag, n=horizon, axis=-1) / sigma
    return np.ascontiguousarray(noise.transpose(0, 2, 1), dtype=np.float32)


class GaussianSequenceSampler:
    """mean/std [H, A] over action sequences, in the bounds' units.

    init_std and min_std are fractions of each dimension's half range, so the
    same config works for any bounds.
    """

    def __init__(self, horizon: int, bounds: ActionBounds, init_std: float, min_std: float,
                 noise_beta: float, rng: np.random.Generator):
        self.horizon = horizon
        self.bounds = bounds
        self.noise_beta = float(noise_beta)
        self.rng = rng
        self.init_std = (init_std * bounds.half_range).astype(np.float32)
        self.min_std = (min_std * bounds.half_range).astype(np.float32)
        self.mean = np.empty((horizon, len(bounds.low)), np.float32)
        self.std = np.empty_like(self.mean)
        self.reset()

    def reset(self) -> None:
        """Back to the prior: mean at the safe action (zero), std at init_std."""
        self.mean[:] = self.bounds.safe
        self.std[:] = self.init_std

    def shift(self) -> None:
        """Advance one control step: drop the executed step, append the prior.

        The new last step gets the prior mean (safe action) rather than a copy of
        the old last step: a copy would keep a stale commitment alive forever.
        The std goes back to init_std so the next tick explores again.
        """
        self.mean[:-1] = self.mean[1:]
        self.mean[-1] = self.bounds.safe
        self.std[:] = self.init_std

    def sample(self, n: int) -> np.ndarray:
        """n clipped sequences [n, H, A] drawn from N(mean, std^2) with the configured noise colour."""
        noise = powerlaw_noise(self.rng, self.noise_beta, (n, self.horizon, self.mean.shape[1]))
        return self.bounds.clip(self.mean + self.std * noise)

    def update(self, mean: np.ndarray, std: np.ndarray, momentum: float) -> None:
        """Blend in a new estimate: keep `momentum` of the old mean/std; std floored at min_std."""
        self.mean[:] = self.bounds.clip(momentum * self.mean + (1.0 - momentum) * mean)
        self.std[:] = np.maximum(momentum * self.std + (1.0 - momentum) * std, self.min_std)
