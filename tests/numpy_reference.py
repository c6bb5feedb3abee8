"""The CSRA equations written out in NumPy: the one reference the tests compare to.

Zhu & Wu, "Residual Attention: A Simple but Effective Method for Multi-Label
Recognition", ICCV 2021, Eq. 2-6 for one head and Eq. 13 for several, written
location by location and class by class in float64, feature-first as in the
paper (the layers compute scores first, with one matmul for all heads). Also
the average- plus max-pooled scores of one linear classifier (paper Fig. 1).
"""

from __future__ import annotations

import math

import numpy as np


def csra_logits(x, kernels, temperatures, lam, normalize=True, average=True):
    """CSRA logits, Eq. 2-6 per head and Eq. 13 over heads.

    Per head with classifier `m` (column `m_i` per class) and temperature `T`:
    `g = mean_j x_j` (Eq. 4), `s_j^i = softmax_j(T x_j . m_i)` (Eq. 2),
    `a_i = sum_j s_j^i x_j` (Eq. 3; `x_j` at the maximum of `x_j . m_i` when
    `T = inf`), `f_i = g + lam a_i` (Eq. 5), `y_i = m_i . f_i` (Eq. 6), with `m_i`
    divided by its norm when `normalize`. The heads' `y` are summed (Eq. 13).

    Args:
        x: features `(B, L, d)` (a map's `h * w` locations, or tokens).
        kernels: one `(d, C)` classifier per head.
        temperatures: one temperature per head, `math.inf` for max pooling.
        lam: weight of the attention term.
        normalize: divide each class's classifier by its L2 norm.
        average: keep the average term `g`; False gives attention pooling,
            `f_i = lam a_i` (paper Table 6, "spatial").

    Returns:
        float64 logits `(B, C)`.
    """
    x = np.asarray(x, np.float64)
    batch = x.shape[0]
    num_classes = np.asarray(kernels[0]).shape[1]
    y = np.zeros((batch, num_classes))
    for m, temperature in zip(kernels, temperatures, strict=True):
        m = np.asarray(m, np.float64)
        if normalize:
            m = m / np.linalg.norm(m, axis=0, keepdims=True)
        for b in range(batch):
            xb = x[b]  # (L, d): x_1..x_L
            g = xb.mean(axis=0) if average else np.zeros(xb.shape[1])
            for i in range(num_classes):
                logits = xb @ m[:, i]  # x_j . m_i for every location j
                if math.isinf(temperature):
                    a = xb[np.argmax(logits)]
                else:
                    e = np.exp(temperature * logits - np.max(temperature * logits))
                    a = ((e / e.sum())[:, None] * xb).sum(axis=0)
                y[b, i] += m[:, i] @ (g + lam * a)
    return y


def attention_pooling_logits(x, kernels, temperatures, normalize=True):
    """Attention pooling alone, `y_i = m_i . a_i` summed over heads (Table 6).

    Args:
        x: features `(B, L, d)`.
        kernels: one `(d, C)` classifier per head.
        temperatures: one temperature per head, `math.inf` for max pooling.
        normalize: divide each class's classifier by its L2 norm.

    Returns:
        float64 logits `(B, C)`.
    """
    return csra_logits(x, kernels, temperatures, 1.0, normalize, average=False)


def avg_max_scores(x, kernel, bias=None, lam=0.0):
    """A linear classifier at every location, average- plus max-pooled (Fig. 1).

    Args:
        x: features `(B, L, d)`.
        kernel: the classifier `(d, C)`.
        bias: `(C,)` or None.
        lam: weight of the max-pooled scores.

    Returns:
        float64 `(mean_l s[l], max_l s[l], mean + lam * max)`, each `(B, C)`,
        with `s[l] = x_l W + b`.
    """
    x = np.asarray(x, np.float64)
    scores = np.einsum("bld,dc->blc", x, np.asarray(kernel, np.float64))
    if bias is not None:
        scores = scores + np.asarray(bias, np.float64)
    average, maximum = scores.mean(axis=1), scores.max(axis=1)
    return average, maximum, average + lam * maximum
