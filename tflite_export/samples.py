"""The inputs an export is verified on: the given ones, the calibration data and fresh ones.

The tolerance (:data:`tflite_export.TOLERANCES`) bounds the *maximum* error over the
verification samples, so it means little on 16 of them: int8 models in particular can be well
inside it on the samples they were calibrated on and outside it on others.  An export is
therefore verified on at least :data:`TOTAL_SAMPLES` inputs, in this order:

1. the *primary* samples: ``verify_with`` if given, else the first 16 samples of
   ``representative_data``, else 16 standard-normal samples (seed 0).  They run one at a time,
   as on a phone (``ExportReport.verify_samples`` / ``.verify_source``);
2. every ``representative_data`` sample: the first :data:`MAX_CALIBRATION_SAMPLES` are the
   calibration set, up to :data:`MAX_HELD_OUT_SAMPLES` more are held out (never calibrated on,
   so genuinely fresh real inputs);
3. at least :data:`MIN_FRESH_SAMPLES` fresh random inputs, up to the total: each element is
   copied from the same element of a randomly chosen real sample (1-2), so every value lies in
   the range of the data and each element keeps its distribution, while the correlations
   between elements are new (seed 1).  Without data: more standard-normal samples.

Everything after the primary samples runs in batches (``ExportReport.verify_parts`` lists the
parts).  The maximum error is taken over all samples, the 99th percentile over those not
used for calibration (at least :data:`MIN_FRESH_SAMPLES`): an int8 model's error on its own
calibration samples is biased low.  Fresh random inputs cannot stand in for unseen real data: pass held-out real inputs as
``verify_with`` (or more ``representative_data``) for a bound that holds on them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .arguments import input_dict, random_inputs

PRIMARY_SAMPLES = 16
MAX_CALIBRATION_SAMPLES = 200
MAX_HELD_OUT_SAMPLES = 1000
TOTAL_SAMPLES = 512
MIN_FRESH_SAMPLES = 256
FRESH_SEED = 1
CALIBRATION = "representative_data (calibration)"
HELD_OUT = f"representative_data beyond the {MAX_CALIBRATION_SAMPLES} calibration samples"
FRESH_IN_RANGE = "fresh random, in range"
FRESH_NORMAL = "fresh random, standard normal"


@dataclasses.dataclass
class VerificationSet:
    """``inputs``: {input name: array [n, ...]}, the primary samples first; ``parts``:
    ``(label, count)`` per part, in order; ``calibration``: which samples int8 was calibrated on
    (its error on them is biased low, so percentiles leave them out)."""

    inputs: dict
    primary: int
    source: str
    parts: list
    calibration: np.ndarray

    @property
    def total(self) -> int:
        return len(next(iter(self.inputs.values())))


def build(model, representative_data, verify_with) -> tuple:
    """Returns ``(calibration, VerificationSet)``; ``calibration`` is ``None`` without
    ``representative_data``.  Raises ``ValueError`` for malformed or non-finite data."""
    calibration = held_out = None
    if representative_data is not None:
        rep = input_dict(model, representative_data, "representative_data")
        calibration = _slice(rep, 0, MAX_CALIBRATION_SAMPLES)
        held_out = _slice(rep, MAX_CALIBRATION_SAMPLES,
                          MAX_CALIBRATION_SAMPLES + MAX_HELD_OUT_SAMPLES)
    if verify_with is not None:
        primary = input_dict(model, verify_with, "verify_with")
        source = "verify_with"
        real = [("verify_with", primary), (CALIBRATION, calibration), (HELD_OUT, held_out)]
    elif calibration is not None:
        primary = _slice(calibration, 0, PRIMARY_SAMPLES)
        source = "first samples of representative_data"
        real = [(CALIBRATION, calibration), (HELD_OUT, held_out)]
    else:
        primary = random_inputs(model, PRIMARY_SAMPLES)
        source = "standard-normal random inputs, seed 0"
        real = [("standard-normal random, seed 0", primary)]
    real = [(label, part) for label, part in real if part is not None and _count(part)]
    n_real = sum(_count(part) for _, part in real)
    n_fresh = max(MIN_FRESH_SAMPLES, TOTAL_SAMPLES - n_real)
    if verify_with is None and representative_data is None:
        fresh = (FRESH_NORMAL, random_inputs(model, n_fresh, seed=FRESH_SEED))
    else:
        fresh = (FRESH_IN_RANGE, in_range(_concat([part for _, part in real]), n_fresh))
    parts = real + [fresh]
    inputs = _concat([part for _, part in parts])
    calibrated = np.concatenate([np.full(_count(part), label == CALIBRATION) for label, part in parts])
    return calibration, VerificationSet(inputs, _count(primary), source,
                                        [(label, _count(part)) for label, part in parts], calibrated)


def in_range(pool: dict, n: int, seed: int = FRESH_SEED) -> dict:
    """``n`` new samples whose every element is the same element of a random ``pool`` sample."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, arr in pool.items():
        flat = arr.reshape(len(arr), -1)
        columns = np.arange(flat.shape[1])
        rows = [flat[rng.integers(0, len(flat), flat.shape[1]), columns] for _ in range(n)]
        out[name] = np.stack(rows).reshape((n,) + arr.shape[1:]).astype(arr.dtype, copy=False)
    return out


def _slice(inputs: dict, start: int, stop: int) -> dict | None:
    out = {k: v[start:stop] for k, v in inputs.items()}
    return out if _count(out) else None


def _count(inputs: dict) -> int:
    return len(next(iter(inputs.values())))


def _concat(parts: list) -> dict:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
