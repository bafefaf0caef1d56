"""The Keras seam: everything tfprune knows about Keras, in one module.

* **Which Keras.** tfprune works on ``tf_keras`` (Keras 2) models: TF-MOT 0.8.1 supports
  nothing else. This is the only module of tfprune that imports ``tf_keras`` (as ``keras``,
  which the rest of tfprune imports from here) or TF-MOT. Importing it changes neither the
  environment nor what the user's ``tf.keras`` means; TF-MOT is imported on first use by
  :func:`tfmot` (see there why that needs care).
* **The checks** every public entry point runs on a model (Keras 3, subclassed, nested).
* **Layer classes**: which weights are prunable (the ``kernel`` of every Dense,
  Conv1D/2D/3D, transposed Conv and EinsumDense layer, and the four EinsumDense kernels of a
  MultiHeadAttention, wrapped or not; biases, BatchNorm, embeddings, recurrent, depthwise and
  separable kernels are never pruned), how they are keyed (:func:`prunable_kernels`), what
  family a layer belongs to (:func:`layer_kind`), and whether it is a pruning wrapper
  (:func:`is_pruning_wrapper`).
* **Fresh initial weights** (:func:`reseeded_clone`): the model rebuilt from its config with
  every seeded initializer given a new seed.
* **Optimizer internals** of tf_keras (legacy and new optimizers).

Everything in tfprune keys masks and scores by the user's *original* layer name (a path of
layer names for the kernels inside a MultiHeadAttention, see :func:`prunable_kernels`), so a
model wrapped by :func:`tfprune.prune_at_init` and the plain model it came from use the same
keys.
"""
from __future__ import annotations

import functools
import os
import sys
import types

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfprune import _layer_families, _seeds

_LEGACY_KERAS = "TF_USE_LEGACY_KERAS"
_TFMOT = None


def _resolve_tf_keras() -> None:
    """Makes TensorFlow's lazy ``keras`` attributes choose their Keras now, as the environment says.

    All three: TF-MOT reads ``tf.keras`` (its compat module) and ``tf.compat.v1.keras`` /
    ``tf.compat.v2.keras`` (its clustering registry) while importing. tf_keras is imported
    (above) before this runs, as it must be: importing it re-creates the compat loaders.
    """
    for namespace in (tf, tf.compat.v1, tf.compat.v2):
        getattr(getattr(namespace, "keras", None), "version", None)


def tfmot() -> types.SimpleNamespace:
    """TF-MOT's pruning API, imported on the first call.

    TF-MOT sets ``TF_USE_LEGACY_KERAS=1`` when imported and then reads ``tf.keras``, which
    would turn the user's ``tf.keras`` into tf_keras for the rest of the process. So the
    ``tf.keras`` entry points are resolved first (as the user's environment says), then TF-MOT
    is imported, then the variable is put back exactly as it was (unset stays unset).

    Returns a namespace with ``PruneLowMagnitude``, ``PruningSchedule``, ``ConstantSparsity``,
    ``PolynomialDecay``, ``UpdatePruningStep``, ``PruningSummaries``, ``prune_low_magnitude``,
    ``strip_pruning`` and ``version``.

    Example:
        >>> tfmot().PruneLowMagnitude.__name__
        'PruneLowMagnitude'
    """
    global _TFMOT
    if _TFMOT is None:
        _resolve_tf_keras()
        saved = os.environ.get(_LEGACY_KERAS)
        try:
            import tensorflow_model_optimization as package
            from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
        finally:
            if saved is None:
                os.environ.pop(_LEGACY_KERAS, None)
            else:
                os.environ[_LEGACY_KERAS] = saved
        api = package.sparsity.keras
        names = ("PruningSchedule", "ConstantSparsity", "PolynomialDecay", "UpdatePruningStep", "PruningSummaries",
                 "prune_low_magnitude", "strip_pruning")
        _TFMOT = types.SimpleNamespace(PruneLowMagnitude=pruning_wrapper.PruneLowMagnitude,
                                       version=package.__version__, **{n: getattr(api, n) for n in names})
    return _TFMOT


def keras_of(obj):
    """The Keras package ``obj`` (a model, layer, loss, ...) belongs to: Keras 3 (``keras``) for a
    Keras 3 object, else tf_keras (imports nothing: a Keras 3 object means Keras 3 is imported)."""
    from tfprune import _keras3

    return sys.modules["keras"] if _keras3.is_keras3(obj) else keras


def _is_keras3_object(obj) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("keras.") and not module.startswith("keras.api._v2")


# Keras revives a layer whose class it does not know (a SavedModel loaded without the custom
# objects) as a RevivedLayer subclass under the saved class name.
_WRAPPER_NAMES = ("FixedMaskWrapper", "PruneLowMagnitude")


def check_model(model, argument: str = "model") -> None:
    """Raises a clear error unless ``model`` is a built tf_keras Sequential/Functional model.

    Also refused: a model whose pruning wrappers Keras revived without their classes (a
    SavedModel loaded without :func:`tfprune.custom_object_scope`): tfprune would see no mask.

    Example:
        >>> check_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    """
    if _is_keras3_object(model):
        raise TypeError(
            f"{argument}: got a Keras 3 model ({type(model).__module__}.{type(model).__name__}); this part of "
            "tfprune (TF-MOT-based: structured, schedules, the TFLite exporter) supports tf_keras "
            "(Keras 2) models only. Keras 3 models work with compute_scores, compute_masks, prune_at_init, "
            "apply_masks, get_masks, strip, sparsity_report and tfprune.lottery; for the rest build the model "
            "with `import tf_keras as keras`."
        )
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{argument}: expected a tf_keras.Model (Sequential or Functional), got "
            f"{type(model).__module__}.{type(model).__name__}."
        )
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise TypeError(
            f"{argument}: subclassed models ({type(model).__name__}) are not supported: tfprune, like "
            "TF-MOT, needs the layer graph. Build the model with the Sequential or Functional API."
        )
    if not model.built:
        raise ValueError(
            f"{argument}: model {model.name!r} is not built; give it an input shape "
            "(keras.Input(...) or input_shape=...) before pruning."
        )
    for layer in model.layers:
        if type(layer).__name__ in _WRAPPER_NAMES and not is_pruning_wrapper(layer):
            raise TypeError(
                f"{argument}: layer {layer.name!r} is a pruning wrapper ({type(layer).__name__}) loaded without "
                "tfprune's classes, so its mask cannot be read; load the model with tfprune.load_model(path), "
                "or call tf_keras.models.load_model inside `with tfprune.custom_object_scope():`."
            )
        if isinstance(layer, keras.Model):
            raise TypeError(
                f"{argument}: layer {layer.name!r} is a nested model ({type(layer).__name__}); "
                "tfprune prunes flat Sequential/Functional models. Flatten it into one model first."
            )


# ---------------------------------------------------------------------------------------------
# Layer classes
# ---------------------------------------------------------------------------------------------

# Layer families (the table, shared with the Keras 3 seam, is tfprune/_layer_families.py).
_CLASSES = dict(_layer_families.resolve(keras.layers))
PRUNABLE_KINDS = ("dense", "conv", "transposed", "einsum", "attention")
ACTIVATION_KINDS = ("activation", "softmax", "prelu")


@functools.lru_cache(maxsize=None)
def _kind_of_class(cls) -> "str | None":
    # A pruning wrapper is TF-MOT's PruneLowMagnitude or a subclass (tfprune's wrapper), known
    # by class name so that asking never imports TF-MOT.
    if any(c.__name__ == "PruneLowMagnitude" for c in cls.__mro__):
        return "wrapper"
    for kind, classes in _CLASSES.items():
        if issubclass(cls, classes):
            return kind
    return None


def layer_kind(layer) -> "str | None":
    """The family of ``layer`` itself (a wrapper is ``"wrapper"``), or None for any other layer.

    One of: wrapper, input, transposed, separable, depthwise, dense, conv, einsum
    (EinsumDense), attention (MultiHeadAttention), batchnorm, normalization (LayerNormalization,
    GroupNormalization, UnitNormalization: they normalise by the input's own statistics),
    activation (Activation, ReLU, LeakyReLU, ELU, ThresholdedReLU), softmax, prelu, identity
    (Dropout and variants, GaussianNoise, ActivityRegularization, Identity: the identity at
    inference), pooling, resize (Cropping, UpSampling), padding (ZeroPadding), flatten, merge
    (Add, Subtract, Multiply, Average, Maximum, Minimum), concat.

    Example:
        >>> layer_kind(keras.layers.Conv2DTranspose(4, 3)), layer_kind(keras.layers.ReLU())
        ('transposed', 'activation')
    """
    return _kind_of_class(type(layer))


def is_pruning_wrapper(layer) -> bool:
    """Whether ``layer`` is TF-MOT's ``PruneLowMagnitude`` or a subclass (tfprune's wrapper).

    The one test of "is this layer wrapped" in tfprune; it never imports TF-MOT.
    """
    return layer_kind(layer) == "wrapper"


def merge_op(layer) -> "str | None":
    """``'add'``, ``'subtract'``, ``'multiply'``, ``'average'``, ``'maximum'`` or ``'minimum'``
    for an element-wise merge layer, else None."""
    return next((cls.__name__.lower() for cls in _CLASSES["merge"] if isinstance(layer, cls)), None)


def is_activation_layer(layer) -> bool:
    """Activation layers (Activation, ReLU, LeakyReLU, ELU, ThresholdedReLU, Softmax, PReLU)."""
    return layer_kind(layer) in ACTIVATION_KINDS


def inner_layer(layer):
    """The user's layer behind a (TF-MOT or tfprune) pruning wrapper, or ``layer`` itself."""
    return layer.layer if is_pruning_wrapper(layer) else layer


def is_prunable(layer) -> bool:
    """True for the layers holding kernels tfprune scores and masks (wrapped or not): Dense,
    Conv1D/2D/3D, their transposes, EinsumDense and MultiHeadAttention."""
    return layer_kind(inner_layer(layer)) in PRUNABLE_KINDS


# The EinsumDense sublayers of a tf_keras MultiHeadAttention whose kernels are pruned, in the
# order MultiHeadAttention creates them (TF-MOT's prune registry lists the same four). tf_keras
# names them "query", "key", "value" and "attention_output".
_ATTENTION_SUBLAYERS = ("_query_dense", "_key_dense", "_value_dense", "_output_dense")


def kernel_owners(layer) -> "dict[str, keras.layers.Layer]":
    """``{key: the layer whose ``kernel`` it is}`` for one top-level ``layer`` (a wrapper is
    seen through); empty for a layer that is not prunable. See :func:`prunable_kernels` for the keys."""
    inner = inner_layer(layer)
    kind = layer_kind(inner)
    if kind not in PRUNABLE_KINDS:
        return {}
    if kind != "attention":
        return {inner.name: inner}
    out = {}
    for attribute in _ATTENTION_SUBLAYERS:
        sub = getattr(inner, attribute, None)
        if sub is not None and getattr(sub, "kernel", None) is not None:
            out[f"{inner.name}/{sub.name}"] = sub
    return out


def layer_kernels(layer) -> "dict[str, tf.Variable]":
    """``{key: kernel variable}`` of one top-level ``layer`` (see :func:`prunable_kernels`)."""
    return {key: owner.kernel for key, owner in kernel_owners(layer).items()}


def prunable_layers(model) -> "dict[str, keras.layers.Layer]":
    """Ordered ``{original layer name: layer}`` of the layers holding prunable kernels, in model
    order. A layer may hold several kernels (a MultiHeadAttention holds four): use
    :func:`prunable_kernels` for the kernels and their keys.

    Wrapped layers are returned as their wrapper; use :func:`inner_layer` for the user's layer.
    """
    out = {}
    for layer in model.layers:
        if is_prunable(layer):
            out[inner_layer(layer).name] = layer
    return out


def prunable_kernel_layers(model) -> "dict[str, tuple]":
    """Ordered ``{key: (top-level layer or its wrapper, the layer owning the kernel)}``."""
    return {key: (layer, owner) for layer in prunable_layers(model).values()
            for key, owner in kernel_owners(layer).items()}


def prunable_kernels(model) -> "dict[str, tf.Variable]":
    """Ordered ``{key: kernel variable}`` of every prunable kernel, in model order.

    **The keys** (of masks, scores, tickets and report rows everywhere in tfprune) are stable
    paths of the user's layer names, the same for a plain model, its wrapped version, a clone
    and a reloaded file:

    * the ``kernel`` of a top-level Dense, Conv1D/2D/3D, Conv*Transpose or EinsumDense layer is
      keyed by the layer's name: ``"fc1"``;
    * a MultiHeadAttention named ``"mha"`` contributes its four EinsumDense kernels, keyed
      ``"mha/query"``, ``"mha/key"``, ``"mha/value"`` and ``"mha/attention_output"`` (the
      sublayers' own names as tf_keras creates them), in that order. Their shapes are
      ``(d_query, heads, key_dim)``, ``(d_key, heads, key_dim)``, ``(d_value, heads, value_dim)``
      and ``(heads, value_dim, d_out)``.

    Example:
        >>> i = keras.Input((6, 8))
        >>> a = keras.layers.MultiHeadAttention(2, 4, name="mha")(i, i)
        >>> model = keras.Model(i, keras.layers.Dense(3, name="fc")(a))
        >>> {key: tuple(k.shape) for key, k in prunable_kernels(model).items()}   # doctest: +NORMALIZE_WHITESPACE
        {'mha/query': (8, 2, 4), 'mha/key': (8, 2, 4), 'mha/value': (8, 2, 4),
         'mha/attention_output': (2, 4, 8), 'fc': (8, 3)}
    """
    return {key: owner.kernel for key, (_, owner) in prunable_kernel_layers(model).items()}


def attention_logit_kernels(model) -> "list[str]":
    """Keys of the query and key kernels of every MultiHeadAttention of ``model``.

    They only shape the attention weights (the softmax of q·k), so on an input whose tokens are
    all equal (SynFlow's all-ones input) the attention is uniform whatever they hold: their
    gradient, SynFlow score and path count are exactly 0 even when their paths are intact.
    """
    out = []
    for layer in prunable_layers(model).values():
        inner = inner_layer(layer)
        if layer_kind(inner) == "attention":
            subs = {id(getattr(inner, a, None)) for a in _ATTENTION_SUBLAYERS[:2]}
            out += [key for key, owner in kernel_owners(layer).items() if id(owner) in subs]
    return out


def build_kernels(layer) -> None:
    """Creates the kernels of ``layer`` (not a wrapper) if they do not exist yet.

    A MultiHeadAttention rebuilt from its config (loading a saved model) has its EinsumDense
    sublayers but not their weights until it is first called; a pruning wrapper needs the
    kernels in its own ``build``. They are built from the input shapes the layer memorised.
    """
    if layer_kind(layer) != "attention" or not getattr(layer, "_built_from_signature", False):
        return
    query, key, value = (tf.TensorShape(getattr(layer, name)) for name in ("_query_shape", "_key_shape", "_value_shape"))
    value_dim = getattr(layer, "_value_dim", None) or layer._key_dim
    attention_output = query[:-1].concatenate([layer._num_heads, value_dim])
    from tf_keras.src.utils import tf_utils

    for attribute, shape in zip(_ATTENTION_SUBLAYERS, (query, key, value, attention_output)):
        sub = getattr(layer, attribute, None)
        if sub is not None and not sub.built:
            # as when the layer is called: outside any function graph, variables named mha/query/...
            with tf_utils.maybe_init_scope(layer), tf.name_scope(layer.name), tf.name_scope(sub.name):
                sub.build(shape)
            sub.built = True


def make_prunable_for_tfmot(layer) -> None:
    """Lets TF-MOT's wrapper (and so tfprune's subclass) take ``layer``, with one mask per
    kernel of :func:`layer_kernels`.

    TF-MOT's prune registry knows Dense, Conv and MultiHeadAttention (by exact class) but not
    EinsumDense. For a prunable layer it does not know, this gives the layer *instance* a
    ``get_prunable_weights`` method, the duck-typed path TF-MOT's wrapper documents for custom
    layers (and the same thing its registry does to the layers it knows). Chosen over adding
    EinsumDense to ``PruneRegistry._LAYERS_WEIGHTS_MAP``: that class-level dict is TF-MOT's
    process-wide state, and changing it would also change what the user's own
    ``tfmot.sparsity.keras.prune_low_magnitude`` accepts and prunes by magnitude; the instance
    method concerns only the layers tfprune wraps (and covers subclasses of EinsumDense and
    MultiHeadAttention, which the registry refuses). A layer that already has the method
    (TF-MOT's own, a user's ``PrunableLayer``) is left alone.
    """
    if hasattr(layer, "get_prunable_weights") or not is_prunable(layer):
        return
    tfmot()  # the registry lives in TF-MOT: imported through the seam, as everywhere
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    if prune_registry.PruneRegistry.supports(layer):
        return

    def get_prunable_weights():
        return list(layer_kernels(layer).values())

    layer.get_prunable_weights = get_prunable_weights


def _short_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _is_matrix(variable) -> bool:
    """A kernel or an embedding table: a variable of two or more dimensions whose name ends in
    ``kernel`` or is ``embeddings``."""
    return len(variable.shape) >= 2 and (_short_name(variable).endswith("kernel") or _short_name(variable) == "embeddings")


def dense_matrices(model) -> "dict[str, list]":
    """Weight matrices tfprune leaves dense: ``{layer name: [(variable, mask or None)]}``.

    A *weight matrix* is a kernel or an embedding table (a variable of two or more dimensions
    whose name ends in ``kernel`` or is ``embeddings``): the kernels of LSTM/GRU/SimpleRNN
    (recurrent ones too), Embedding tables, depthwise and separable kernels, ... of every layer,
    except the kernels :func:`prunable_kernels` lists (a subclass of MultiHeadAttention with
    more EinsumDense sublayers keeps those extra kernels here). Biases, normalisation
    parameters and PReLU slopes are not matrices. ``mask`` is a (TF-MOT) wrapper's mask of that
    variable, when the layer is wrapped. :func:`not_pruned_reason` says why, per layer.
    """
    out = {}
    for layer in model.layers:
        pruned = {id(v) for v in layer_kernels(layer).values()}
        masks = {id(w): m for w, m, _ in getattr(layer, "pruning_vars", ())} if is_pruning_wrapper(layer) else {}
        found = [(w, masks.get(id(w))) for w in inner_layer(layer).weights if _is_matrix(w) and id(w) not in pruned]
        if found:
            out[inner_layer(layer).name] = found
    return out


_NOT_PRUNED_REASONS = (  # (layer class names, why its matrices stay dense); first match wins
    (("Embedding",), "embedding table (a lookup, not a matrix product)"),
    (("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"),
     "recurrent layer: input and recurrent kernels are not pruned"),
    (("DepthwiseConv1D", "DepthwiseConv2D"), "depthwise kernel: not pruned"),
    (("SeparableConv1D", "SeparableConv2D"), "separable convolution: depthwise and pointwise kernels are not pruned"),
    (("MultiHeadAttention",), "kernels besides query/key/value/attention_output are not pruned"),
)


def not_pruned_reason(layer) -> str:
    """Why tfprune leaves the weight matrices of ``layer`` (a wrapper is seen through) dense."""
    inner = inner_layer(layer)
    names = {cls.__name__ for cls in type(inner).__mro__}
    for classes, reason in _NOT_PRUNED_REASONS:
        if names.intersection(classes):
            return reason
    return f"{type(inner).__name__}: not a layer tfprune prunes"


def require_prunable(model, argument: str = "model") -> "dict[str, keras.layers.Layer]":
    layers = prunable_layers(model)
    if not layers:
        kinds = sorted({type(inner_layer(l)).__name__ for l in model.layers})
        raise ValueError(
            f"{argument}: model {model.name!r} has no prunable layer (Dense, Conv1D, Conv2D, Conv3D, their "
            f"transposes, EinsumDense or MultiHeadAttention); its layers are {kinds}."
        )
    return layers


def input_shape(model) -> tuple:
    shape = model.input_shape
    if isinstance(shape, list):
        raise ValueError(
            f"model: {model.name!r} has {len(shape)} inputs; tfprune's data-dependent scorers and "
            "SynFlow support single-input models."
        )
    return tuple(shape)


def output_layers(model) -> list:
    """The layers (wrappers included) that produce ``model.outputs``, in output order."""
    return [tensor._keras_history.layer for tensor in model.outputs]


def output_names(model) -> "list[str]":
    """The user's names of the output layers (wrappers seen through), in output order."""
    return [inner_layer(layer).name for layer in output_layers(model)]


def ends_in_softmax(layer) -> bool:
    """Whether ``layer`` (a wrapper is seen through) is a Softmax layer or has a softmax activation."""
    layer = inner_layer(layer)
    if layer_kind(layer) == "softmax":
        return True
    act = getattr(layer, "activation", None)
    return act is keras.activations.softmax or getattr(act, "__name__", "") == "softmax"


def variables_in_true_dtype():
    """A context in which mixed-precision (autocast) variables read in their own dtype (float32),
    not the layer's compute dtype (float16): masking must not round the float32 weights."""
    from tf_keras.src.mixed_precision.autocast_variable import enable_auto_cast_variables

    return enable_auto_cast_variables(None)


def compute_dtype_is_low_precision(layer) -> bool:
    """Whether ``layer`` computes in float16/bfloat16 (e.g. under the ``mixed_float16`` policy)."""
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "compute_dtype", None) in ("float16", "bfloat16")


# ---------------------------------------------------------------------------------------------
# Fresh initial weights
# ---------------------------------------------------------------------------------------------

derived_seed = _seeds.derived_seed  # a function of (seed, labels) only: tfprune/_seeds.py


def _is_seeded_initializer(key: str, node) -> bool:
    """Whether ``node`` (found under ``key`` in a layer config) is a serialized initializer
    with a fixed seed: ``{"class_name": ..., "config": {..., "seed": <int>}}`` under a key
    ending in ``initializer``, or any such dict that deserializes to an initializer."""
    if not _seeds.has_seed(node):
        return False
    if key.endswith("initializer"):
        return True
    try:
        return isinstance(keras.initializers.deserialize(node), keras.initializers.Initializer)
    except Exception:  # not an initializer (a nested layer's config, an unknown class, ...)
        return False


def reseeded_clone(model, seed: int):
    """A clone of ``model`` (same architecture, layer names and initializer classes and
    parameters) with newly drawn initial weights that are a function of ``seed`` alone.

    Every layer is rebuilt from its config in which each initializer with a fixed ``seed``
    (kernel, bias, embeddings, depthwise/pointwise, recurrent, BatchNorm gamma/beta, ...; also
    nested, e.g. in a wrapper's or Bidirectional's inner layer) is re-seeded with
    ``derived_seed(seed, layer name, where the initializer sits in the config)``; initializers
    without a seed draw under ``keras.utils.set_random_seed(seed)``, which this calls (it
    resets the global random state). So the new weights come from the same distributions as
    the model's own initial weights, and differ from them even where the model fixed the seeds.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        ...     3, kernel_initializer=keras.initializers.GlorotNormal(seed=1))])
        >>> clone = reseeded_clone(model, seed=0)
        >>> clone.layers[0].kernel_initializer.seed != 1
        True
    """
    keras.utils.set_random_seed(int(seed))

    def rebuilt(layer):
        return layer.__class__.from_config(
            _seeds.reseeded(layer.get_config(), int(seed), layer.name, _is_seeded_initializer))

    return keras.models.clone_model(model, clone_function=rebuilt)


# ---------------------------------------------------------------------------------------------
# Optimizer internals (tf_keras's legacy optimizers and the new ones differ)
# ---------------------------------------------------------------------------------------------

def is_legacy_optimizer(optimizer) -> bool:
    return isinstance(optimizer, keras.optimizers.legacy.Optimizer)


def build_optimizer(optimizer, variables) -> None:
    """Creates the optimizer's slot variables for ``variables`` now (a no-op once built)."""
    if is_legacy_optimizer(optimizer):
        optimizer._create_all_weights(variables)
    else:
        optimizer.build(variables)


def optimizer_variables(optimizer) -> list:
    """Every variable of the optimizer (step counter and slots), in its own order."""
    variables = optimizer.variables
    return list(variables() if callable(variables) else variables)


def learning_rate_variable(optimizer) -> "tf.Variable | None":
    """The learning rate if the optimizer holds it in a variable (callbacks may change it), else None."""
    if is_legacy_optimizer(optimizer):
        value = optimizer._hyper.get("learning_rate")
    else:
        value = getattr(optimizer, "_learning_rate", None)
    return value if isinstance(value, tf.Variable) else None


def optimizer_step(optimizer) -> tf.Variable:
    """The optimizer's step counter (``iterations``)."""
    return optimizer.iterations
