"""Allocation: scores + target sparsity + scope → 0/1 masks. The only place masks are made.

Pure numpy, no TensorFlow: every client (pruning at init, lottery tickets, sanity checks,
structured pruning, the Keras 3 path to come) goes through :func:`allocate`.

Rules
-----
* ``N`` = number of eligible weights (layers in ``exclude`` are kept dense and not counted;
  with ``within`` only weights still alive are eligible). Exactly ``k = round(N · density)``
  weights are kept with ``scope="global"`` (element-wise).
* ``scope="layerwise"`` keeps ``round(n_l · density)`` in each layer (the total can differ from
  ``k`` by the per-layer rounding).
* Ties are broken by position: earlier layer (model order) first, then lower flat index. The
  result is a deterministic function of the inputs.
* ``min_density``: every non-excluded layer keeps at least ``ceil(min_density · n_l)`` weights
  (its best ones); the rest of the budget is then ranked globally.
* ``block=(bh, bw)``: 2-D (Dense, Keras layout ``[in, out]``) kernels are pruned in blocks of
  ``bh × bw``; a block's score is the mean of its weights' scores. ``(4, 1)`` / ``(16, 1)``
  map to TFLite's 1x4 (float) / 1x16 (int8) sparse fully-connected kernels. Trailing partial
  blocks (an input dim that is not a multiple of ``bh``) are blocks of their own, smaller
  size; the exporter checks them. Counts are then exact to within one block.
* ``min_kept=k``: every non-excluded layer keeps at least its ``min(k, units)`` best units
  (weights, blocks or channels), whatever the scope; these floors come out of the global
  budget, and win over it when they alone exceed it.
* ``n_m=(N, M)``: N:M sparsity, see :func:`allocate` and :func:`n_m_report`. Each kernel is cut
  into groups of ``M`` consecutive weights along its **input-channel axis** (axis ``-2``: a
  Dense kernel ``[in, out]`` gives, for each output, groups of M consecutive inputs; a Conv
  kernel ``[..., C_in, C_out]`` gives groups along ``C_in`` for each output and tap; a 1-D
  array is grouped along its only axis), and every full group keeps exactly its ``N`` best
  weights. The pattern fixes the density, so ``sparsity`` must be ``None`` or ``1 - N/M``.
  **Trailing partial group** (``C_in`` not a multiple of M, ``r = C_in mod M`` weights): it
  keeps ``ceil(N·r/M)`` of its best weights. That is never more than ``N`` (so the group,
  zero-padded to M as TFLite / sparse tensor cores do, is still a valid N:M group), never more
  than ``r``, never zero (an input is never cut from every output by the rule alone), and the
  group's density is the smallest one ≥ N/M. For 2:4: ``C_in = 1`` keeps 1 of 1 (0% sparsity
  there: nothing else is possible without cutting the input), ``C_in = 2`` keeps 1 of 2 (50%),
  ``C_in = 3`` keeps 2 of 3 (33%), ``C_in = 6`` keeps 2 of 4 + 1 of 2 (50%). TF-MOT instead
  pads with zeros that count as pruned (C_in = 1, 2 → 0%; TF-MOT issue #1182).
  :func:`n_m_report` lists every layer where some group does not keep exactly N.
* :func:`allocate_channels`: the channel-level path used by structured pruning; it ranks
  1-D per-channel scores through :func:`allocate` (see there for its rules).
"""
from tfprune.allocation.channels import allocate_channels
from tfprune.allocation.elements import SCOPES, allocate, check_sparsity
from tfprune.allocation.n_m import (NMLayer, NMReport, check_n_m, check_n_m_options, n_m_report,
                                    partial_group_keep)

__all__ = ["NMLayer", "NMReport", "SCOPES", "allocate", "allocate_channels", "check_n_m", "check_n_m_options",
           "check_sparsity", "n_m_report", "partial_group_keep"]
