"""Model surgery: builds the smaller model (and the masked reference it must equal).

What a removed channel means — the *masked original* — is chosen with ``removed``:

``removed="zero"`` (default; what Torch-Pruning, NNI and the filter-pruning papers do)
    The channel is dead from its producer to its consumers: the masked original is the
    original model with the channel's kernel slice **and bias** zeroed, and with every
    per-channel parameter on its way to the consumers zeroed too: BatchNorm ``γ = β = 0``
    (so BN outputs exactly 0 for it; without ``scale``, its moving mean is set to the
    incoming constant instead of ``γ``), depthwise kernel slice and bias ``= 0``.
    With ReLU-like activations (f(0) = 0) the channel is then exactly 0 at every consumer
    and the smaller model equals the masked original exactly, whatever the padding.

``removed="fold"`` (function-preserving)
    The masked original only has the channel's **kernel slice** zeroed, i.e. it is
    ``tfprune.apply_masks(model, plan.kernel_masks())``. The removed channel then still
    carries a constant: ``act(bias)``, shifted by BatchNorm to ``γ(c − μ)/√(σ² + ε) + β``,
    through activations, pooling, Flatten, merges. That constant's contribution
    ``Σ c · W[..., c, :]`` is folded into each consumer's bias (a bias is added to a consumer
    that had none). This is exact for Dense consumers and for convolutions without padding
    effects (``padding="valid"`` or a 1×1 kernel); for a ``"same"``/``"causal"`` convolution
    with a larger kernel, zero padding makes the contribution smaller at the borders, so the
    fold is exact only away from the borders: the report's ``exact`` is then False and its
    notes name the layer (a warning is issued too).

In both modes the same constant propagation also covers activations with f(0) ≠ 0 (sigmoid,
softplus): the constant they produce is folded, with the same exactness rule. Equality holds
in inference mode (BatchNorm uses its moving statistics).
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune._keras import keras
from tfprune.structured.graph import StructuredPruningError

REMOVED = ("zero", "fold")


class InexactFoldWarning(UserWarning):
    """A removed channel's constant was folded into a padded convolution's bias: the smaller
    model equals the masked original only away from the feature-map borders."""


@dataclasses.dataclass
class Edit:
    config: dict = dataclasses.field(default_factory=dict)   # config overrides of the new layer
    weights: "list[np.ndarray] | None" = None                 # weights of the new layer
    reference: "list[np.ndarray] | None" = None               # weights of the masked original


def _spatial_kernel_is_one(kernel: np.ndarray) -> bool:
    return all(d == 1 for d in kernel.shape[:-2])


def _apply_activation(fn, values: np.ndarray) -> np.ndarray:
    if fn is None:
        return values
    return np.asarray(fn(tf.constant(values[None, :], tf.float32)).numpy(), np.float64)[0]


def _is_softmax(fn) -> bool:
    return getattr(fn, "__name__", "") in ("softmax", "log_softmax")


def propagate(graph, keep_unit: np.ndarray, removed: str = "zero"):
    """Walks the graph once; returns ``({layer: Edit}, notes, exact)``.

    ``keep_unit[u]`` says whether unit ``u`` survives. ``notes`` lists the consumers whose
    constant fold is exact only away from the borders (then ``exact`` is False).
    """
    if removed not in REMOVED:
        raise ValueError(f"removed: got {removed!r}; allowed: {', '.join(map(repr, REMOVED))}.")
    const: "dict[tuple, np.ndarray]" = {}   # per tensor: value a removed channel carries (0 where kept)
    flag: "dict[tuple, np.ndarray]" = {}    # per tensor: that value is not spatially uniform
    edits: "dict[str, Edit]" = {}
    notes: "list[str]" = []
    for step in graph.steps:
        layer, name, role = step.layer, step.layer.name, step.role
        ins_c = [const[k] for k in step.inputs]
        ins_f = [flag[k] for k in step.inputs]
        ins_keep = [keep_unit[graph.tensor_units[k]] for k in step.inputs]
        out_c = out_f = None
        if role == "input":
            pass
        elif role == "producer":
            out_c, out_f = _producer(layer, graph, keep_unit, ins_keep[0], ins_c[0], ins_f[0], removed, edits, notes)
        elif role == "channelwise":
            out_c, out_f = _channelwise(layer, ins_keep[0], ins_c[0], ins_f[0], removed, edits)
        elif role == "padding":
            out_c, out_f = ins_c[0], ins_f[0] | (ins_c[0] != 0)
        elif role == "flatten":
            spatial = len(graph.tensor_units[step.outputs[0]]) // max(len(ins_c[0]), 1)
            out_c, out_f = np.tile(ins_c[0], spatial), np.tile(ins_f[0], spatial)
        elif role == "merge":
            out_c, out_f = _merge(layer, ins_c), np.logical_or.reduce(ins_f)
        elif role == "concat":
            rank = len(step.output_shapes[0])
            if layer.axis % rank == rank - 1:
                out_c, out_f = np.concatenate(ins_c), np.concatenate(ins_f)
            else:
                out_c = ins_c[0]
                out_f = np.logical_or.reduce(ins_f + [c != ins_c[0] for c in ins_c[1:]])
        else:  # opaque: its inputs carry no removed channel (checked before), its outputs are pinned
            for keep in ins_keep:
                if not keep.all():
                    raise StructuredPruningError(f"layer {name!r} ({type(layer).__name__}) would receive removed channels.")
        for key in step.outputs:
            keep_out = keep_unit[graph.tensor_units[key]]
            if out_c is None:  # input or opaque layer: fresh, pinned channels
                const[key], flag[key] = np.zeros(len(keep_out)), np.zeros(len(keep_out), bool)
                continue
            const[key] = np.where(keep_out, 0.0, out_c)
            flag[key] = np.where(keep_out, False, out_f)
    return edits, notes, not notes


def _producer(layer, graph, keep_unit, keep_in, c_in, f_in, removed, edits, notes):
    name = layer.name
    weights = layer.get_weights()
    kernel = np.asarray(weights[0])
    bias = np.asarray(weights[1]) if layer.use_bias else None
    c_out = kernel.shape[-1]
    keep_out = keep_unit[graph.producer_units[name]]
    if not keep_out.all() and _is_softmax(layer.activation):
        raise StructuredPruningError(f"layer {name!r} ({type(layer).__name__}) has a softmax activation across its "
                                     "channels; its channels cannot be removed. Pass it in exclude=[...].")
    # Constant contribution of removed input channels, folded into the bias.
    contributing = ~keep_in & ((c_in != 0) | f_in)
    correction = None
    if contributing.any():
        per_input = kernel.reshape(-1, kernel.shape[-2], c_out).sum(axis=0).astype(np.float64)  # [C_in, C_out]
        correction = c_in[contributing] @ per_input[contributing]
        padding = getattr(layer, "padding", "valid")
        exact = not f_in[contributing].any() and (
            _keras.layer_kind(layer) == "dense" or padding == "valid" or _spatial_kernel_is_one(kernel))
        if not exact:
            where = ("its input is not spatially uniform" if f_in[contributing].any() else
                     f"padding={padding!r} with a {'x'.join(map(str, kernel.shape[:-2]))} kernel")
            notes.append(f"{name}: removed input channels carry constants (max |c| = "
                         f"{np.abs(c_in[contributing]).max():.3g}) folded into its bias; exact only away from the "
                         f"feature-map borders ({where}).")
    new_bias = None
    if bias is not None or correction is not None:
        full = (bias.astype(np.float64) if bias is not None else np.zeros(c_out)) + (correction if correction is not None else 0.0)
        new_bias = full[keep_out].astype(kernel.dtype)
    new_kernel = kernel[..., keep_in, :][..., keep_out]
    edit = Edit()
    key = "units" if _keras.layer_kind(layer) == "dense" else "filters"
    edit.config[key] = int(keep_out.sum())
    if bias is None and new_bias is not None:
        edit.config["use_bias"] = True
    edit.weights = [new_kernel] + ([new_bias] if new_bias is not None else [])
    ref_kernel = kernel.copy()
    ref_kernel[..., ~keep_out] = 0
    ref_bias = None
    if bias is not None:
        ref_bias = bias.copy()
        if removed == "zero":
            ref_bias[~keep_out] = 0
    edit.reference = [ref_kernel] + ([ref_bias] if ref_bias is not None else [])
    edits[name] = edit
    start = np.zeros(c_out) if (removed == "zero" or bias is None) else bias.astype(np.float64)
    return _apply_activation(layer.activation, start), np.zeros(c_out, bool)


def _channelwise(layer, keep, c_in, f_in, removed, edits):
    name, kind = layer.name, _keras.layer_kind(layer)
    if kind == "batchnorm":
        weights = layer.get_weights()
        edit = Edit(weights=[np.asarray(w)[keep] for w in weights])
        params = dict(zip([w.name.split("/")[-1].split(":")[0] for w in layer.weights], weights))
        mean = params["moving_mean"].astype(np.float64)
        var = params["moving_variance"].astype(np.float64)
        gamma = params["gamma"].astype(np.float64) if layer.scale else np.ones_like(mean)
        beta = params["beta"].astype(np.float64) if layer.center else np.zeros_like(mean)
        if removed == "zero":
            ref = {k: np.array(v) for k, v in params.items()}
            if layer.scale:
                ref["gamma"][~keep] = 0
            else:
                ref["moving_mean"][~keep] = c_in[~keep]
            if layer.center:
                ref["beta"][~keep] = 0
            edit.reference = [ref[w.name.split("/")[-1].split(":")[0]] for w in layer.weights]
            out_c = np.zeros_like(c_in)
            out_f = np.zeros_like(f_in) if layer.scale else f_in
        else:
            edit.reference = [np.array(w) for w in weights]
            out_c = gamma * (c_in - mean) / np.sqrt(var + layer.epsilon) + beta
            out_f = f_in
        edits[name] = edit
        return out_c, out_f
    if kind == "depthwise":
        weights = layer.get_weights()
        kernel = np.asarray(weights[0])
        bias = np.asarray(weights[1]) if layer.use_bias else None
        edit = Edit(weights=[kernel[..., keep, :]] + ([bias[keep]] if bias is not None else []))
        if removed == "zero":
            ref_kernel = kernel.copy()
            ref_kernel[..., ~keep, :] = 0
            ref = [ref_kernel]
            if bias is not None:
                ref_bias = bias.copy()
                ref_bias[~keep] = 0
                ref.append(ref_bias)
            edit.reference = ref
            pre, out_f = np.zeros_like(c_in), np.zeros_like(f_in)
        else:
            edit.reference = [np.array(w) for w in weights]
            pre = c_in * kernel[..., 0].reshape(-1, kernel.shape[-2]).sum(axis=0).astype(np.float64)
            if bias is not None:
                pre = pre + bias
            padded = layer.padding != "valid" and not all(d == 1 for d in kernel.shape[:-2])
            out_f = f_in | (padded & (c_in != 0))
        edits[name] = edit
        return _apply_activation(layer.activation, pre), out_f
    if kind == "activation":
        return np.asarray(layer(tf.constant(c_in[None, :], tf.float32)).numpy(), np.float64)[0], f_in
    return c_in, f_in  # dropout, pooling, cropping, up-sampling, identity


_MERGES = {"add": lambda v: np.sum(v, axis=0), "subtract": lambda v: v[0] - v[1],
           "multiply": lambda v: np.prod(v, axis=0), "average": lambda v: np.mean(v, axis=0),
           "maximum": lambda v: np.max(v, axis=0), "minimum": lambda v: np.min(v, axis=0)}


def _merge(layer, values):
    op = _MERGES.get(_keras.merge_op(layer))
    if op is not None:
        return op(values)
    raise StructuredPruningError(f"layer {layer.name!r} ({type(layer).__name__}): unknown merge.")


def _rebuild(model, edits, which: str):
    """A new model from ``model``'s configs with ``edits`` applied (``which``: "weights" for the
    smaller model, "reference" for the masked original)."""

    def clone(layer):
        config = layer.get_config()
        if which == "weights" and layer.name in edits:
            config.update(edits[layer.name].config)
        return layer.__class__.from_config(config)

    new = keras.models.clone_model(model, clone_function=clone)
    sources = {layer.name: layer for layer in model.layers}
    for layer in new.layers:
        if not layer.weights or layer.name not in sources:
            continue
        edit = edits.get(layer.name)
        values = getattr(edit, which) if edit is not None else None
        layer.set_weights(values if values is not None else sources[layer.name].get_weights())
    return new


def build(model, graph, keep_unit, removed="zero", stacklevel=2):
    """The smaller model, its notes and whether it equals the masked original exactly."""
    edits, notes, exact = propagate(graph, keep_unit, removed)
    if notes:
        warnings.warn("structured pruning: " + " ".join(notes), InexactFoldWarning, stacklevel=stacklevel)
    return _rebuild(model, edits, "weights"), notes, exact


def reference(model, graph, keep_unit, removed="zero"):
    """The masked original: a copy of ``model`` whose removed channels are zeroed as ``removed``
    defines (see the module docstring). Same architecture and size as ``model``."""
    edits, _, _ = propagate(graph, keep_unit, removed)
    return _rebuild(model, edits, "reference")
