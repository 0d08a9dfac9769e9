"""The compression ratio the forecast sizes data with (bitshuffle-LZ4 of simulated frames),
against an information-theoretic bound: no lossless code stores independent Poisson pixels in
fewer bits than their entropy, Σ H(Poisson(λ)), computed here from the pmf; and bitshuffle
stores the bit planes above the largest count as runs of zeros, so the ratio is at least the
dtype's bits over the bits the counts use."""

import numpy as np
import pytest
from scipy import stats

from twin.workflows.simres import _compression_ratio


def _poisson_entropy_bits(lam: np.ndarray) -> float:
    """Σ over pixels of the Poisson entropy in bits (exact sum over the pmf)."""
    total = 0.0
    for v, n in zip(*np.unique(lam, return_counts=True)):
        k = np.arange(0, int(v + 12 * np.sqrt(v) + 20))
        p = stats.poisson.pmf(k, v)
        p = p[p > 0]
        total += n * float(-(p * np.log2(p)).sum())
    return total


@pytest.mark.parametrize("peak", [3.0, 300.0, 30000.0])
def test_ratio_respects_the_entropy_bound(peak):
    # a far-field-like frame: a bright centre falling off as q⁻⁴, as twin's frames do
    n, frames = 64, 200
    q2 = ((np.arange(n) - n // 2)[:, None] ** 2 + (np.arange(n) - n // 2)[None, :] ** 2)
    lam = np.round(peak / (1 + q2 / 4.0) ** 2, 3)
    rng = np.random.default_rng(1)
    counts = rng.poisson(lam, size=(frames, n, n)).astype(np.uint16)
    ratio = _compression_ratio(counts)
    bound = counts.nbytes * 8 / (frames * _poisson_entropy_bits(lam))
    assert ratio < bound * 1.01                  # no code beats the entropy
    used = np.ceil(np.log2(counts.max() + 1.0))
    assert ratio > 0.9 * 16 / used               # the empty bit planes cost next to nothing
