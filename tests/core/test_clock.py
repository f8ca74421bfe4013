"""Offset estimation from probes."""

from chimerapy.clock import ClockEstimator, ClockSample


def test_offset_from_minimum_round_trip():
    estimator = ClockEstimator()
    assert estimator.offset == 0.0 and estimator.uncertainty == float("inf")
    true_offset = 30.0
    # (send, one-way out, one-way back): asymmetric slow probes mislead, the fast one does not
    for sent, out, back in [(0.0, 0.020, 0.002), (1.0, 0.0004, 0.0004), (2.0, 0.003, 0.030)]:
        estimator.add(ClockSample(sent, sent + out + true_offset, sent + out + back))
    assert abs(estimator.offset - true_offset) < 1e-9
    assert abs(estimator.uncertainty - 0.0004) < 1e-9
    assert len(estimator.history) == 3


def test_negative_round_trip_is_ignored():
    estimator = ClockEstimator()
    estimator.add(ClockSample(5.0, 100.0, 4.0))
    assert estimator.best() is None
