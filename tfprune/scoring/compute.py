"""Scores of a model by a registered method: :func:`compute_scores` (and the pieces
:func:`tfprune.compute_masks` shares with it)."""
from __future__ import annotations

import numpy as np

from tfprune import _keras, _keras3, checks
from tfprune.scoring._common import as_batches
from tfprune.scoring._targets import check_labels, resolve_loss
from tfprune.scoring.registry import get_scorer


def make_score_fn(model, method, data=None, loss=None, **options):
    """Validates the arguments and returns ``(scorer, score(masks))`` for ``method``."""
    if _keras3.is_keras3(model):
        _keras3.require_prunable(model)
    else:
        _keras.check_model(model)
        _keras.require_prunable(model)
    scorer = get_scorer(method)
    unknown = set(options) - set(scorer.options)
    if unknown:
        raise TypeError(f"{sorted(unknown)[0]}: not an option of method {method!r}; its options: "
                        f"{list(scorer.options) or 'none'}.")
    batches, loss_fn = None, None
    if scorer.needs_data:
        if data is None:
            raise ValueError(f"data: method {method!r} needs data, got None. Pass data=(x, y) arrays (about 10 "
                             "examples per class, see tfprune.experiment.data.balanced_batch) or a tf.data.Dataset "
                             "of (x, y) batches.")
        batches = as_batches(model, data)
        loss_fn = resolve_loss(model, loss)
        check_labels(model, batches, loss_fn)  # before any gradient work
        if options.get("strategy") is not None:  # per-replica passes (tfprune/scoring/_distributed.py)
            from tfprune.scoring import _distributed
            _distributed.check_strategy(options["strategy"], model)
            loss_fn = _distributed.replica_loss(loss_fn)
    return scorer, scorer.make(model, batches, loss_fn, **options)


def check_finite(scores, method):
    for name, value in scores.items():
        if not checks.all_finite(np.asarray(value)):
            bad = ~np.isfinite(value)
            raise FloatingPointError(f"scores: method {method!r} produced {int(bad.sum())} NaN/inf score(s) in layer "
                                     f"{name!r}; check the model's weights, the data and the loss.")
    return scores


def compute_scores(model, method, data=None, loss=None, masks=None, **options):
    """One round of ``method``'s scores for every prunable kernel of ``model``.

    Args:
        model: a built tf_keras Sequential or Functional model (wrapped or not).
        method: a registered scorer name: ``random``, ``magnitude``, ``snip``, ``grasp``,
            ``synflow`` or one added with :func:`register_scorer`.
        data: ``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)`` batches, for the
            data-dependent methods (SNIP, GraSP, and registered ones with ``needs_data``).
            Multi-output models take ``y`` as a list (one array per output) or a dict keyed by
            output-layer name. Class labels are checked first: with a sparse categorical
            cross-entropy (or integer labels for an output of C > 1 units) every label must be a
            whole number in ``[0, C)``, one-hot labels must have C columns; otherwise a
            ``ValueError`` names the output, the bad label and how many there are.
        loss: a Keras loss (name, object or callable ``(y_true, y_pred)``); defaults to the
            compiled model's loss. Multi-output models: one loss for every output, a list (one
            per output) or a dict keyed by output name; the objective is the sum over the outputs
            of each loss's mean (``loss_weights`` are not applied).
        masks: optional ``{layer: 0/1 array}``; masked weights are zero in the forward pass.
            Defaults to the model's own masks if it is wrapped.
        **options: the method's options (``seed`` for random, ``temperature`` for GraSP,
            ``input_shape`` for SynFlow; ``strategy``, a ``tf.distribute.Strategy``, for SNIP and
            GraSP on tf_keras models: each batch is split across its replicas and the
            per-replica gradients are all-reduced, see docs/distributed.md).

    Returns:
        ``{original layer name: np.ndarray}`` with each kernel's shape. For SynFlow this is a
        single round; :func:`tfprune.compute_masks` runs the iterative schedule.

    Example:
        >>> scores = tfprune.compute_scores(model, "snip", data=(x[:40], y[:40]), loss=loss)
        >>> {name: s.shape for name, s in scores.items()}
        {'fc1': (16, 32), 'fc2': (32, 16), 'output': (16, 4)}
    """
    if masks is None:
        from tfprune.wrapper import get_masks, is_wrapped
        if is_wrapped(model):
            masks = get_masks(model)
    _, score = make_score_fn(model, method, data, loss, **options)
    return check_finite(score(masks), method)
