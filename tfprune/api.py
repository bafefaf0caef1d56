"""The public pruning entry points: scores → masks → wrapped model.

Every step is a call into one module: :mod:`tfprune.scoring` (what is important),
:mod:`tfprune.allocation` (what is kept), :mod:`tfprune.wrapper` (holding the masks).
"""
from __future__ import annotations

import sys
import warnings
from typing import Mapping, Sequence

import numpy as np

from tfprune import _keras, _keras3, checks
from tfprune.allocation import allocate, check_n_m_options, check_sparsity
from tfprune.allocation.survivors import Survivors
from tfprune.report import sparsity_report
from tfprune.scoring import check_finite, make_score_fn, nets
from tfprune.wrapper import _refuse_sparse_execution, apply_masks, check_masks, get_masks, is_wrapped


class LayerCollapseWarning(UserWarning):
    """A pruned layer keeps no weight, or every path through it is cut: the network's output
    no longer depends on its input through that layer."""


class NotPrunedWarning(UserWarning):
    """The model holds weight matrices tfprune leaves dense (Embedding tables, LSTM/GRU/SimpleRNN
    input and recurrent kernels, depthwise and separable kernels, ...): the requested sparsity
    applies to the prunable kernels only (Dense, Conv, transposed Conv, EinsumDense, and the
    query/key/value/output kernels of MultiHeadAttention, which are pruned). The sparsity report
    lists the others as "not prunable" with the reason and gives ``overall_sparsity`` over every
    weight matrix."""


class ZeroScoreWarning(UserWarning):
    """A scoring method gave every (still alive) weight of a kernel a score of exactly 0: it sees
    no effect of that kernel on its objective, so it cannot rank its weights (they are ties at 0)
    and a global ranking prunes them before any weight with a positive score. The known case:
    SynFlow and the query/key kernels of a MultiHeadAttention (its all-ones input makes every
    token equal, so the attention is uniform whatever those kernels hold). ``exclude=[...]``
    keeps such kernels dense."""


def _names(exclude) -> "set[str]":
    """``exclude`` (a layer name or names) as a set of names."""
    return {exclude} if isinstance(exclude, str) else set(exclude)


def _warn_zero_scores(model, scores, alive, method, exclude) -> None:
    exclude = _names(exclude)
    zero = [name for name, score in scores.items() if name not in exclude
            and _all_zero(score, None if not alive or name not in alive else np.asarray(alive[name]) != 0)]
    if not zero:
        return
    attention = [name for name in zero if name in set(_attention_logit_kernels(model))]
    why = (" (for the attention query/key kernels: its all-ones input makes every token equal, so the attention "
           "is uniform whatever they hold)" if attention and method == "synflow" else "")
    warnings.warn(f"method {method!r} scores every weight of {zero} exactly 0{why}: it sees no effect of them on its "
                  "objective and cannot rank their weights, so they are ties at 0 (pruned before every weight with a "
                  f"positive score under keep='highest'). Pass exclude={zero} to keep them dense.",
                  ZeroScoreWarning, stacklevel=_caller_stacklevel())


def _all_zero(score, alive) -> bool:
    score = np.asarray(score)
    if alive is not None:
        score = score[alive]
    return score.size > 0 and not np.any(score)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside tfprune (the user's call)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("tfprune."):
        frame, level = frame.f_back, level + 1
    return level


# ---------------------------------------------------------------- per-Keras facts api needs

def _attention_logit_kernels(model) -> "list[str]":
    if _keras3.is_keras3(model):
        from tfprune._keras3.layers import attention_logit_kernels
        return attention_logit_kernels(model)
    return list(_keras.attention_logit_kernels(model))


def _einsum_kernels(model) -> "list[str]":
    if _keras3.is_keras3(model):
        from tfprune._keras3.layers import einsum_kernels
        return einsum_kernels(model)
    return [key for key, (_, owner) in _keras.prunable_kernel_layers(model).items() if _keras.layer_kind(owner) == "einsum"]


def _left_dense(model, include=()) -> "tuple[list[str], list[str], int]":
    """(keys, layer kinds, weights) of the weight matrices tfprune leaves dense."""
    if _keras3.is_keras3(model):
        from tfprune._keras3.layers import dense_matrices, walk
        dense = dense_matrices(model, include)
        layers = dict(walk(model))
        kinds = sorted({type(layers[k]).__name__ for k in dense if k in layers})
        return list(dense), kinds, sum(int(np.prod(v.shape)) for v, _ in dense.values())
    dense = _keras.dense_matrices(model)
    kinds = sorted({type(_keras.inner_layer(l)).__name__ for l in model.layers if _keras.inner_layer(l).name in dense})
    return list(dense), kinds, sum(int(np.prod(v.shape)) for matrices in dense.values() for v, _ in matrices)


def _warn_not_pruned(model, sparsity, include=()) -> None:
    dense, kinds, left = _left_dense(model, include)
    if not dense:
        return
    pruned = sum(int(np.prod(shape)) for shape in nets.kernel_shapes(model, include).values())
    warnings.warn(f"layers {list(dense)} ({', '.join(kinds)}) hold {left:,} weights in matrices that tfprune does not "
                  f"prune ({left / (left + pruned):.0%} of all weight matrices); they stay dense and sparsity={sparsity} "
                  "applies to the prunable kernels only. "
                  "sparsity_report(...).overall_sparsity counts them.",
                  NotPrunedWarning, stacklevel=_caller_stacklevel())


def compute_masks(model, method: str, sparsity: "float | None" = None, data=None, loss=None, scope: str = "global",
                  seed=None, *, exclude: Sequence[str] = (), min_density: float = 0.0, block=None,
                  rounds: "int | None" = None, within: "Mapping[str, np.ndarray] | None" = None,
                  keep: "str | None" = None,
                  n_m: "tuple[int, int] | None" = None, **options) -> "dict[str, np.ndarray]":
    """Scores ``model`` with ``method`` and keeps the best ``1 - sparsity`` of its prunable weights.

    Args:
        model: built tf_keras Sequential/Functional model (its current weights are scored).
        method: registered scorer (``random``, ``magnitude``, ``snip``, ``grasp``, ``synflow``).
        sparsity: fraction of the (non-excluded) prunable weights to prune, in [0, 1); with
            ``n_m`` it is ``None`` (or ``1 - N/M``).
        data, loss: for data-dependent methods, see :func:`tfprune.compute_scores`.
        scope: ``"global"`` (default) or ``"layerwise"`` ranking.
        seed: seed of the ``random`` scorer (same seed → bit-identical masks): None or an
            integer >= 0, checked whatever the method.
        exclude: keys of kernels left dense (layer names; ``"mha/query"`` etc. for attention).
            min_density: per-kernel floor. block: ``(4, 1)`` etc. for block-sparse Dense
            kernels. See :func:`tfprune.allocation.allocate`.
        rounds: number of score → prune rounds, densities d^(r/rounds); defaults to the
            method's own (100 for SynFlow, 1 otherwise).
        within: masks of weights still alive (only those can be kept; the sparsity still counts
            all the weights), e.g. a lottery level. **Defaults to the model's own masks when
            ``model`` is already wrapped** (pruned by tfprune or TF-MOT): pruning then continues
            within them (iterative pruning), no pruned weight is ever kept again (excluded layers
            keep their masks too), and a ``sparsity`` below the one the masks already have is a
            ``ValueError``. Pass ``within={}`` to score every weight again and replace the masks
            (pruned weights are 0.0 by then, so most methods rank them last anyway).
        keep: ``"highest"`` or ``"lowest"`` scores survive; defaults to the method's own
            (``"lowest"`` for GraSP). The opposite of the default gives the *inverted* sanity
            check of Frankle et al. 2021 (every round of an iterative method keeps that end).
        n_m: ``(N, M)``, e.g. ``(2, 4)``: N:M sparsity along each kernel's input-channel axis
            (N best of every M consecutive inputs, per output; a trailing partial group of r
            keeps ``ceil(N·r/M)``; see :func:`tfprune.allocation.allocate` and
            :func:`tfprune.allocation.n_m_report`). The pattern fixes every layer's density,
            so one scoring round is the default; with ``rounds=R`` the kept count per group goes
            from M down to N over R rounds (round r keeps ``M - round((M - N)·r/R)``).
        **options: method options (``temperature`` for GraSP, ``input_shape`` for SynFlow;
            ``include=("embedding",)``: also score and mask Embedding tables, Keras 3 models only;
            ``strategy=``: SNIP/GraSP passes on a ``tf.distribute`` strategy's replicas, tf_keras).

    Returns:
        ``{key: float32 0/1 array of the kernel's shape}``; the keys are the original layer
        names, and ``"mha/query"``, ``"mha/key"``, ``"mha/value"``, ``"mha/attention_output"``
        for the kernels of a MultiHeadAttention ``"mha"`` (see ``tfprune.get_masks``).

    Warns with :class:`NotPrunedWarning`, naming them, when the model has weight matrices
    tfprune leaves dense (recurrent kernels, embeddings, depthwise kernels).

    Example:
        >>> masks = tfprune.compute_masks(model, "synflow", sparsity=0.9)
        >>> int(sum(m.sum() for m in masks.values()))        # round(1,088 · 0.1) weights kept
        109
        >>> masks = tfprune.compute_masks(model, "snip", 0.9, data=(x, y), loss=loss)   # data: (x, y) or a Dataset
        >>> masks = tfprune.compute_masks(model, "magnitude", n_m=(2, 4))   # 2:4 sparsity
        >>> sorted(masks), masks["fc1"].shape, float(masks["fc1"].mean())
        (['fc1', 'fc2', 'output'], (16, 32), 0.5)
    """
    seed = checks.seed(seed)
    if not _keras3.is_keras3(model):
        _refuse_sparse_execution(model)
    if n_m is not None:
        n, m = check_n_m_options(n_m, sparsity, block=block, min_density=min_density)
    else:
        if sparsity is None:
            raise ValueError("sparsity: got None; pass a fraction in [0, 1) (or n_m=(N, M) for N:M sparsity).")
        sparsity = check_sparsity(sparsity)
    takes = _scorer(method).options
    if _scorer(method).learns_mask:  # it makes its masks during the search from sparsity and scope only
        extra = [name for name, value in (("n_m", n_m), ("block", block), ("within", within), ("exclude", exclude),
                                          ("min_density", min_density)) if value]
        extra += [f"rounds={rounds!r} (it runs in one round)"] if rounds not in (None, 1) else []
        if not extra and is_wrapped(model) and any((m == 0).any() for m in get_masks(model).values()):
            extra = ["an already-pruned model"]
        if extra:
            raise ValueError(f"method: {method!r} learns a mask for the whole network from sparsity and scope; it does "
                             f"not take {extra[0]}.")
        options = {"sparsity": sparsity, "scope": scope, **options}
    scorer, score = make_score_fn(model, method, data, loss, **({"seed": seed} if "seed" in takes else {}), **options)
    if n_m is not None:
        _check_n_m_kernels(model, n_m, exclude)
    include = tuple(options.get("include") or ())
    _warn_not_pruned(model, sparsity if n_m is None else f"{n_m[0]}:{n_m[1]}", include)
    if rounds is None:
        rounds = 1 if n_m is not None else scorer.rounds
    if keep is None:
        keep = scorer.keep
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds: expected an integer >= 1, got {rounds!r}.")
    if within is None and is_wrapped(model):
        within = get_masks(model)  # an already-pruned model: prune further, never revive
    masks = check_masks(model, within, "within") if within is not None else None
    if masks and n_m is None:
        _check_within_budget(model, masks, sparsity, exclude, include)
    if n_m is not None:
        for r in range(1, rounds + 1):
            scores = check_finite(score(masks), method)
            if r == 1:
                _warn_zero_scores(model, scores, masks, method, exclude)
            kept = m - int(round((m - n) * r / rounds))
            masks = _never_revive(allocate(scores, None, keep=keep, exclude=exclude, within=masks, n_m=(kept, m)), within)
        return masks
    density = 1.0 - sparsity
    if rounds > 1 and hasattr(score, "alive") and keep == "highest" and block is None and not min_density:
        return _never_revive(_survivor_rounds(model, score, method, masks, density, rounds, scope, exclude), within)
    for r in range(1, rounds + 1):
        scores = check_finite(score(masks), method)
        if r == 1:
            _warn_zero_scores(model, scores, masks, method, exclude)
        # excluded kernels come back dense from allocate: their within-pruned weights stay out of
        # the next round's forward pass too
        masks = _never_revive(allocate(scores, 1.0 - density ** (r / rounds), scope=scope, keep=keep,
                                       exclude=exclude, min_density=min_density, block=block, within=masks), within)
    return masks


def _survivor_rounds(model, score, method, within, density, rounds, scope, exclude) -> "dict[str, np.ndarray]":
    """The rounds of an iterative scorer that scores the alive weights alone (SynFlow on
    tf_keras, ``score.alive``): the survivors are one index array from round 1 on
    (:mod:`tfprune.allocation.survivors`), the same masks as ``allocate(within=...)``'s round
    after round, at a cost that falls with the density."""
    excluded, within = _names(exclude), within or {}
    shapes = nets.kernel_shapes(model)
    survivors = Survivors({n: s for n, s in shapes.items() if n not in excluded},
                          {n: m for n, m in within.items() if n not in excluded})
    # round 1 also zeroes the excluded kernels' pruned weights (excluded kernels stay in the forward pass)
    dropped = {**{n: np.flatnonzero(np.asarray(within[n]).reshape(-1) == 0) for n in excluded if n in within},
               **survivors.dropped}
    for r in range(1, rounds + 1):
        keys = score.alive(survivors, dropped if r == 1 else None)
        if not checks.all_finite(keys):
            check_finite(survivors.split(keys), method)
        if r == 1:
            _warn_zero_scores(model, survivors.split(keys), None, method, exclude)
        survivors.keep(keys, 1.0 - density ** (r / rounds), scope=scope)
    kept = survivors.masks()
    return {n: kept[n] if n in kept else np.ones(shape, np.float32) for n, shape in shapes.items()}


def _check_n_m_kernels(model, n_m, exclude):
    """N:M groups run along a kernel's input-channel axis (``-2``); an EinsumDense kernel (also
    inside a MultiHeadAttention) has no such axis in general (``(d_model, heads, key_dim)``:
    ``-2`` is the heads axis), so N:M refuses them unless they are excluded."""
    exclude = _names(exclude)
    einsum = [key for key in _einsum_kernels(model) if key not in exclude]
    if einsum:
        raise ValueError(f"n_m: got {tuple(n_m)!r}, but the EinsumDense kernels {einsum} (MultiHeadAttention and "
                         "EinsumDense layers) have no single input-channel axis to group along; pass exclude="
                         f"{einsum} to keep them dense, or prune them with sparsity=... instead of n_m.")


def _never_revive(masks, within):
    """Excluded layers come back dense from allocation: they keep their ``within`` mask."""
    if within:
        masks = {n: m * (np.asarray(within[n]) != 0).astype(np.float32) if n in within else m for n, m in masks.items()}
    return masks


def _check_within_budget(model, within, sparsity, exclude, include=()):
    """Pruning within masks cannot reach a sparsity below the one they already have."""
    exclude = _names(exclude)
    sizes = {n: int(np.prod(shape)) for n, shape in nets.kernel_shapes(model, include).items() if n not in exclude}
    total = sum(sizes.values())
    alive = sum(int(np.count_nonzero(within[n])) if n in within else size for n, size in sizes.items())
    if total and int(round(total * (1.0 - sparsity))) > alive:
        current = 1.0 - alive / total
        raise ValueError(f"sparsity: got {sparsity}, but model {model.name!r} already prunes {current:.3f} of these "
                         f"weights and pruning within its masks never revives one; allowed: a sparsity >= {current:.3f}, "
                         "or within={} to score every weight again (replacing the masks).")


def _scorer(method):
    from tfprune.scoring import get_scorer
    return get_scorer(method)


def prune_at_init(model, method: str, sparsity: float, data=None, loss=None, scope: str = "global",
                  seed=None, *, execution: str = "dense", **kwargs):
    """Computes masks with :func:`compute_masks` and returns ``model`` wrapped with them fixed.

    The result is ready for ``compile`` and ``fit`` (pass ``callbacks=tfprune.callbacks()``);
    its masks never change during training. Like TF-MOT's ``prune_low_magnitude`` it reuses
    ``model``'s layers. Warns with :class:`LayerCollapseWarning` if a layer collapsed.

    An already-pruned (wrapped) ``model`` is pruned further *within* its masks, to
    ``sparsity`` of all its prunable weights, and updated in place (see ``within`` in
    :func:`compute_masks`): a weight pruned before stays pruned.

    ``execution`` (tf_keras models): ``"dense"`` (default) multiplies each masked kernel
    densely; ``"sparse"`` trains every eligible Dense layer over its kept weights only (sparse
    products, gradients and optimizer state for the kept weights; numerically the masked dense
    step up to float rounding), ``"auto"`` only the Dense layers where that is faster (sparse
    enough and large enough); see :mod:`tfprune.sparse_dense`.

    Example:
        >>> pruned = tfprune.prune_at_init(model, "synflow", sparsity=0.9)
        >>> pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        >>> before = tfprune.get_masks(pruned)
        >>> history = pruned.fit(x, y, epochs=2, callbacks=tfprune.callbacks(), verbose=0)
        >>> all((tfprune.get_masks(pruned)[name] == mask).all() for name, mask in before.items())
        True
        >>> round(tfprune.sparsity_report(pruned).sparsity, 4)   # 979 of 1,088 weights pruned
        0.8998
    """
    checks.choice(execution, "execution", ("dense", "sparse", "auto"))
    if execution != "dense" and _keras3.is_keras3(model):
        raise ValueError(f"execution: got {execution!r} for a Keras 3 model; allowed there: 'dense' "
                         "(sparse execution is implemented for tf_keras models only).")
    masks = compute_masks(model, method, sparsity, data, loss, scope, seed, **kwargs)
    pruned = apply_masks(model, masks)
    if execution != "dense":
        from tfprune import sparse_dense
        pruned = sparse_dense.sparse_execution(pruned, get_masks(pruned), execution)
    report = sparsity_report(pruned)
    if report.collapsed:
        warnings.warn(f"layer collapse after {method} at sparsity {sparsity}: {report.collapsed} keep no "
                      "weight or have every path cut; the network cannot learn through them. Consider "
                      "min_density=..., scope='layerwise' or a lower sparsity.", LayerCollapseWarning, stacklevel=2)
    return pruned


def callbacks(log_dir: "str | None" = None):
    """The Keras callbacks ``fit`` needs for a pruned model.

    ``UpdatePruningStep`` (keeps TF-MOT's step counter and re-applies masks at each epoch end)
    and, with ``log_dir``, ``PruningSummaries`` (per-layer sparsity in TensorBoard).
    """
    tfmot = _keras.tfmot()
    out = [tfmot.UpdatePruningStep()]
    if log_dir:
        out.append(tfmot.PruningSummaries(log_dir=str(log_dir)))
    return out
