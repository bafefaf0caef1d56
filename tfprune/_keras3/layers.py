"""Keras 3 layers: which kernels tfprune prunes, under which key, and which matrices it leaves dense.

Prunable: the kernel variable (``layer._kernel``, the stored kernel behind the ``kernel``
property) of every ``Dense``, ``EinsumDense``, ``Conv1D/2D/3D`` and ``Conv1D/2D/3DTranspose``
layer (subclasses included), at any depth: layers inside layers (MultiHeadAttention's
EinsumDense sublayers), models inside the model, keras-hub layers (``TransformerEncoder`` →
``MultiHeadAttention`` → ``EinsumDense``). ``Embedding`` tables only with
``include=("embedding",)``. Not prunable, and reported by :func:`dense_matrices` with the reason:
every other weight matrix (recurrent cells, depthwise/separable kernels, embeddings without the
opt-in, LoRA-enabled or quantized layers, unknown layer types holding a kernel, ...).

Keys are layer-name paths relative to the model (see :mod:`tfprune._keras3`). A model that holds
tf_keras objects anywhere in its layers is refused with a one-line ``ValueError``.
"""
from __future__ import annotations

import keras

from tfprune._keras3 import is_keras3, is_tf_keras

EMBEDDING = "embedding"
INCLUDE_CHOICES = (EMBEDDING,)

PRUNABLE_CLASSES = tuple(getattr(keras.layers, name) for name in (
    "Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"))


def check_include(include, argument: str = "include") -> "tuple[str, ...]":
    if isinstance(include, str):
        include = (include,)
    include = tuple(include or ())
    unknown = [i for i in include if i not in INCLUDE_CHOICES]
    if unknown:
        raise ValueError(f"{argument}: unknown {unknown}; allowed: {list(INCLUDE_CHOICES)}.")
    return include


def check_model(model, argument: str = "model") -> None:
    """Raises unless ``model`` is a built Keras 3 ``keras.Model`` (any kind: Sequential,
    Functional, subclassed)."""
    if not is_keras3(model) or not isinstance(model, keras.Model):
        raise TypeError(f"{argument}: expected a Keras 3 keras.Model, got {type(model).__module__}.{type(model).__name__}.")
    if not model.built:
        raise ValueError(f"{argument}: model {model.name!r} is not built; call it on data or model.build(input_shape) first.")


def is_masked_layer(layer) -> bool:
    """Whether ``layer`` is tfprune's mask wrapper (:class:`tfprune._keras3.masked.MaskedLayer`)."""
    return bool(getattr(type(layer), "_tfprune_masked_layer", False))


def _see_through(layer):
    return layer.layer if is_masked_layer(layer) else layer


def _check_no_tf_keras(layer, key: str, argument: str) -> None:
    for attr, value in vars(layer).items():
        values = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else (value,)
        for item in values:
            if is_tf_keras(item):
                name = getattr(item, "name", None)
                raise ValueError(
                    f"{argument}: layer {key or layer.name!r} holds the tf_keras object {name!r} "
                    f"({type(item).__module__}.{type(item).__name__}, attribute {attr!r}): a model must not mix tf_keras "
                    "and Keras 3 objects; build it with one of them (import keras for Keras 3).")


def _children(layer) -> list:
    return list(layer._flatten_layers(include_self=False, recursive=False))


def walk(root, argument: str = "model", include_root: bool = False) -> "list[tuple[str, object]]":
    """``[(key, layer)]`` for every layer below ``root`` (and ``root`` itself under the key ``""``
    when ``include_root``), depth first in tracking order (model order), each layer once (the
    first path that reaches it), mask wrappers seen through. Refuses tf_keras objects and two
    different layers under one key."""
    root = _see_through(root)
    out, seen, keys = [], {id(root)}, {}
    if include_root:
        out.append(("", root))
    _check_no_tf_keras(root, "", argument)

    def visit(layer, prefix):
        for child in _children(layer):
            child = _see_through(child)
            if id(child) in seen:
                continue
            seen.add(id(child))
            key = f"{prefix}/{child.name}" if prefix else child.name
            if key in keys:
                raise ValueError(f"{argument}: two different layers have the key {key!r} (layers of one parent must have "
                                 "different names); rename one of them.")
            keys[key] = child
            _check_no_tf_keras(child, key, argument)
            out.append((key, child))
            visit(child, key)

    visit(root, "")
    return out


def _variable(layer, *names):
    """The first of ``layer``'s attributes ``names`` that is a ``keras.Variable``, or None."""
    for name in names:
        value = getattr(layer, name, None)
        if isinstance(value, keras.Variable):
            return value
    return None


def _unsupported_mode(layer) -> "str | None":
    """Why a Dense/Conv/Embedding-like layer's stored kernel is not what it computes with."""
    if getattr(layer, "lora_enabled", False):
        return f"{type(layer).__name__} with LoRA enabled: not supported"
    mode = getattr(layer, "quantization_mode", None)
    if mode:
        return f"{type(layer).__name__} quantized ({mode}): not supported"
    return None


def prunable_kernel(layer, include=()):
    """The prunable kernel variable of ``layer`` itself (not of its sublayers), or None."""
    if not getattr(layer, "built", False) or _unsupported_mode(layer):
        return None
    if isinstance(layer, PRUNABLE_CLASSES):
        return _variable(layer, "_kernel", "kernel")
    if EMBEDDING in include and isinstance(layer, keras.layers.Embedding):
        return _variable(layer, "_embeddings", "embeddings")
    return None


def _kernels(entries, include) -> "dict[str, object]":
    out, seen = {}, set()
    for key, layer in entries:
        variable = prunable_kernel(layer, include)
        if variable is not None and id(variable) not in seen:  # a shared (tied) kernel: its first key
            seen.add(id(variable))
            out[key] = variable
    return out


def prunable_kernels(model, include=(), argument: str = "model") -> "dict[str, keras.Variable]":
    """Ordered ``{key: kernel variable}`` of the prunable kernels of ``model``, in model order.

    Keys are layer-name paths relative to the model (``fc1``, ``mha/query``,
    ``backbone/transformer_layer_0/self_attention/query``). ``include=("embedding",)`` adds the
    ``Embedding`` tables."""
    include = check_include(include)
    return _kernels(walk(model, argument), include)


def layer_kernels(layer, include=()) -> "dict[str, keras.Variable]":
    """Like :func:`prunable_kernels`, relative to ``layer``: its own kernel under ``""``, its
    sublayers' under their paths below it (``query``, ``transformer_layer_0/self_attention/query``)."""
    return _kernels(walk(layer, "layer", include_root=True), check_include(include))


_NOT_MATRICES = ("bias",)


def _is_matrix(variable) -> bool:
    """A weight matrix: two or more dimensions, not a bias; a kernel or embedding table (any
    dtype, quantized ones too) or any other trainable float variable (so that a layer type
    tfprune does not know is never skipped silently)."""
    name = variable.name
    if len(variable.shape) < 2 or name.endswith(_NOT_MATRICES):
        return False
    if name.endswith("kernel") or "embedding" in name:
        return True
    return bool(variable.trainable) and "float" in str(variable.dtype)


def _reason(layer, variable) -> str:
    cls = type(layer).__name__
    what = "" if variable.name in ("kernel", "_kernel", "embeddings", "_embeddings") else " " + variable.name.replace("_", " ")
    unsupported = _unsupported_mode(layer)
    if unsupported and isinstance(layer, PRUNABLE_CLASSES + (keras.layers.Embedding,)):
        return unsupported
    if isinstance(layer, keras.layers.Embedding) and not what:
        return f"{cls}: pass include=('embedding',)"
    if not getattr(layer, "built", False):
        return f"{cls}: not built"
    if type(layer).__module__.startswith("keras.src.layers."):
        return f"{cls}{what}: not supported"
    return f"{cls}{what}: unknown layer type, not supported"


def _own_variables(layer) -> list:
    return list(getattr(layer, "_trainable_variables", [])) + list(getattr(layer, "_non_trainable_variables", []))


def dense_matrices(model, include=(), argument: str = "model") -> "dict[str, tuple]":
    """``{key: (variable, reason)}`` of every weight matrix of ``model`` that tfprune does not
    prune (with ``include``), in model order: recurrent kernels, depthwise/separable kernels,
    Embedding tables (reason: "Embedding: pass include=('embedding',)"), LoRA-enabled or
    quantized layers, unknown layer types holding a kernel, ...

    The key is the layer's key for its ``kernel``/``embeddings`` variable and
    ``<layer key>/<variable name>`` for any other (``lstm/lstm_cell/recurrent_kernel``); a
    variable of the model itself (a subclassed model's ``add_weight``) is keyed by its name."""
    include = check_include(include)
    entries = walk(model, argument)
    pruned = {id(v) for v in _kernels(entries, include).values()}
    out, seen = {}, set(pruned)
    for key, layer in [("", model)] + entries:
        for variable in _own_variables(layer):
            if id(variable) in seen or not _is_matrix(variable):
                continue
            seen.add(id(variable))
            if not key:
                name = variable.name
            else:
                name = key if variable.name in ("kernel", "embeddings") else f"{key}/{variable.name}"
            while name in out:  # a sublayer named like a variable of its parent: never overwrite
                name += "'"
            out[name] = (variable, _reason(layer, variable))
    return out


def attention_logit_kernels(model) -> "list[str]":
    """Keys of the query and key kernels of every MultiHeadAttention (they only shape the
    attention weights: a uniform attention gives them no gradient)."""
    entries = dict(walk(model))
    return [key for key, layer in entries.items() if layer.name in ("query", "key") and "/" in key
            and isinstance(entries.get(key.rsplit("/", 1)[0]), keras.layers.MultiHeadAttention)]


def einsum_kernels(model) -> "list[str]":
    """Keys of the EinsumDense kernels (top-level or inside attention layers)."""
    kernels = prunable_kernels(model)
    return [key for key, layer in walk(model) if key in kernels and isinstance(layer, keras.layers.EinsumDense)]


def kernel_owners(layer) -> "dict[str, keras.layers.Layer]":
    """``{key: the layer that owns the kernel}`` for every prunable kernel in ``layer`` (its own
    and its sublayers', at any depth; a mask wrapper is seen through), keyed by the path of layer
    names from ``layer`` itself: ``{"fc1": <Dense fc1>}``, ``{"mha/query": <EinsumDense query>, ...}``."""
    root = _see_through(layer)
    out, seen = {}, set()
    for path, owner in walk(root, "layer", include_root=True):
        variable = prunable_kernel(owner)
        if variable is not None and id(variable) not in seen:
            seen.add(id(variable))
            out[f"{root.name}/{path}" if path else root.name] = owner
    return out


def input_names(model) -> "list[str]":
    """The names of ``model``'s ``Input`` layers, in input order (a Sequential model's input
    tensor is named ``keras_tensor...``; its input layer, what a ``.keras`` file and a TFLite
    signature name, is ``input_layer...``)."""
    names = []
    for tensor in model.inputs:
        history = getattr(tensor, "_keras_history", None)
        operation = getattr(history, "operation", None)
        names.append(getattr(operation, "name", None) or tensor.name)
    return names
