"""SQNR: by hand, and summed over chunks."""
import numpy as np

from edgeq import metrics


def test_sqnr_by_hand():
    # signal 3^2 + 4^2 = 25, noise 0^2 + 1^2 = 1
    assert metrics.sqnr_db(np.array([3.0, 4.0]), np.array([3.0, 3.0])) == 10 * np.log10(25.0)
    assert metrics.sqnr_db(np.array([1.0]), np.array([1.0])) == float("inf")


def test_sqnr_summed_over_chunks_is_the_sqnr_of_all_samples():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(40, 7)).astype(np.float32)
    approx = ref + rng.normal(scale=0.01, size=ref.shape).astype(np.float32)
    total = metrics.SqnrSum()
    for start in range(0, 40, 16):
        total.add(ref[start:start + 16], approx[start:start + 16])
    assert abs(total.db() - metrics.sqnr_db(ref, approx)) < 1e-9
    empty = metrics.SqnrSum()
    empty.add(ref, ref)
    assert empty.db() == float("inf")
