"""Counter-based noise shared by every backend: Philox4x32-10 and Box-Muller (float64, then float32).

Element i of the stream (seed, plan_index) comes from Philox block i // 4, lane i % 4, exactly as in
csrc/include/ami_robot/philox.h, so the C++ planner's internal noise and the noise made here agree
(up to the last float32 rounding of libm's log/sin/cos).
"""

from __future__ import annotations

import numpy as np

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
NOISE_STREAM_TAG = 0x414D4952  # "AMIR"


def philox4x32_10(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 of counters (n, 4) uint32 under key (k0, k1); returns (n, 4) uint32."""
    c = [np.asarray(counter[:, i], dtype=np.uint64) for i in range(4)]
    k0, k1 = key[0] & 0xFFFFFFFF, key[1] & 0xFFFFFFFF
    for round_ in range(10):
        if round_ > 0:
            k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
        p0, p1 = _M0 * c[0], _M1 * c[2]
        c = [
            (p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0),
            p1 & _MASK32,
            (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1),
            p0 & _MASK32,
        ]
    return np.stack(c, axis=1).astype(np.uint32)


def normal(seed: int, plan_index: int, count: int, start: int = 0) -> np.ndarray:
    """Elements [start, start + count) of the standard-normal stream (seed, plan_index), float32."""
    first, last = start // 4, (start + count + 3) // 4
    blocks = np.arange(first, last, dtype=np.uint64)
    counter = np.stack(
        [
            blocks & _MASK32,
            blocks >> np.uint64(32),
            np.full_like(blocks, plan_index & 0xFFFFFFFF),
            np.full_like(blocks, NOISE_STREAM_TAG),
        ],
        axis=1,
    )
    bits = philox4x32_10(counter, (seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)).astype(np.float64)
    u = (bits[:, 0::2] + 0.5) * (1.0 / 4294967296.0)
    w = (bits[:, 1::2] + 0.5) * (1.0 / 4294967296.0)
    radius = np.sqrt(-2.0 * np.log(u))
    angle = 2.0 * np.pi * w
    out = np.empty((blocks.shape[0], 4), dtype=np.float64)
    out[:, 0::2] = radius * np.cos(angle)
    out[:, 1::2] = radius * np.sin(angle)
    offset = start - first * 4
    return out.reshape(-1)[offset : offset + count].astype(np.float32)


def colored(white: np.ndarray, beta: float) -> np.ndarray:
    """Power-law (1/f^beta) noise along axis -1 from white noise of the same shape, unit variance
    per element (iCEM, Pinneri et al. 2020). beta=0 returns white unchanged."""
    if beta == 0.0:
        return white
    n = white.shape[-1]
    k = np.arange(n // 2 + 1)
    freq = np.maximum(np.minimum(k, n - k), 1) / n  # DC gets the lowest frequency's gain
    scale = freq ** (-beta / 2.0)
    full = np.concatenate([scale, scale[1 : (n + 1) // 2][::-1]])  # the whole symmetric spectrum
    scale = scale / np.sqrt((full**2).mean())
    spectrum = np.fft.rfft(white.astype(np.float64), axis=-1) * scale
    return np.fft.irfft(spectrum, n=n, axis=-1).astype(np.float32)


def planner_noise(
    seed: int, plan_index: int, iterations: int, samples: int, horizon: int, action_dim: int, beta: float = 0.0
) -> np.ndarray:
    """The noise (iterations, samples, horizon, action_dim) of one plan() call. White noise is the
    stream in this (C) order; colored noise filters it along the horizon."""
    count = iterations * samples * horizon * action_dim
    white = normal(seed, plan_index, count).reshape(iterations, samples, horizon, action_dim)
    if beta == 0.0:
        return white
    return np.ascontiguousarray(np.moveaxis(colored(np.moveaxis(white, 2, 3), beta), 3, 2))
