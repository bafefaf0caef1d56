"""The fixed-mask wrapper: holds a mask and applies it. Nothing else.

:class:`FixedMaskWrapper` subclasses TF-MOT's ``PruneLowMagnitude`` so that TF-MOT's
``UpdatePruningStep``, ``PruningSummaries`` and ``strip_pruning`` (isinstance checks) accept it,
and it keeps the same variables (``mask``, ``threshold``, ``pruning_step``), so that the
masks are saved with the model. Unlike TF-MOT's wrapper it never re-ranks weights by
magnitude: its ``call`` only sets the masked kernel entries to +0.0 before the wrapped layer
runs (idempotent: applying it twice changes nothing; in the weight's own dtype, so float32
weights under ``mixed_float16`` are never rounded). The wrapper computes in its layer's dtype
policy (a float32 output layer in a mixed-precision model stays float32).
There is no ``top_k``, ``tf.cond``, step counter or step assertion in the training step, so
``UpdatePruningStep`` is accepted (it initialises ``pruning_step`` to 0 and re-applies the masks
at each epoch end, through the same idempotent op) but not required; ``pruning_step`` is not
advanced, since nothing reads it.

Masks are 0/1: set with :func:`apply_masks` and read with :func:`get_masks`, keyed by the user's
original layer names; any other value is refused there and when a file is loaded
(:func:`load_model`, :func:`custom_object_scope`). The class is made on first use (:func:`wrapper_class`, or the name
``FixedMaskWrapper`` through PEP 562), so that importing tfprune does not import TF-MOT; its
behaviour is in ``_FixedMaskWrapper`` below.
"""
from __future__ import annotations

import inspect
import types
from typing import Mapping

import numpy as np
import tensorflow as tf

from tfprune import _keras, _keras3, _loading, _mask_values, keras_utils, schedules
from tfprune._keras import keras


class _FixedMaskWrapper:
    """Wraps a Dense/Conv/EinsumDense layer (one kernel) or a MultiHeadAttention (its four
    EinsumDense kernels) and multiplies each kernel by its own fixed 0/1 mask.

    Build models with it through :func:`tfprune.prune_at_init` or :func:`apply_masks`;
    load saved ones inside :func:`tfprune.custom_object_scope`. Like TF-MOT's wrapper it is
    named ``fixed_mask_wrapper_<layer name>``; tfprune's APIs key everything by the layer name.

    Example:
        >>> import tfprune
        >>> wrapped = tfprune.FixedMaskWrapper(keras.layers.Dense(10))
    """

    def __init__(self, layer, pruning_schedule=None, **kwargs):
        if pruning_schedule is None:
            pruning_schedule = schedules.schedule_classes()["FixedMask"]()
        # The wrapper computes in its layer's dtype policy (mixed precision: a float32 output
        # layer in a mixed_float16 model gets float32 inputs, as it would unwrapped).
        kwargs["dtype"] = getattr(layer, "dtype_policy", None) or kwargs.get("dtype")
        _keras.make_prunable_for_tfmot(layer)  # EinsumDense: see there why not TF-MOT's registry
        super().__init__(layer, pruning_schedule=pruning_schedule, **kwargs)
        self._call_accepts_training = "training" in inspect.signature(self.layer.call).parameters

    def build(self, input_shape):
        # A MultiHeadAttention rebuilt from its config (a loaded file) has no kernels until it is
        # called; TF-MOT's build needs them to make the masks.
        _keras.build_kernels(self.layer)
        super().build(input_shape)
        # UpdatePruningStep re-masks at each epoch end through this op: make it ours (idempotent).
        self.pruning_obj.weight_mask_op = self.mask_weights

    def add_weight(self, name=None, *args, **kwargs):
        # TF-MOT's build names every mask "mask" and every threshold "threshold"; a wrapper that
        # holds several kernels (MultiHeadAttention) would then hold equal names, which an .h5
        # file cannot store. The first keeps its name (files of one-kernel wrappers unchanged),
        # the next ones are "mask_1", "mask_2", ...
        if name in ("mask", "threshold"):
            counts = self.__dict__.setdefault("_tfprune_weight_names", {})
            index = counts.get(name, 0)
            counts[name] = index + 1
            name = f"{name}_{index}" if index else name
        return super().add_weight(name, *args, **kwargs)

    def mask_weights(self):
        """``kernel ← 0 where mask == 0`` for every masked weight: idempotent (applying it twice
        changes nothing, whatever the mask holds), +0.0 (never -0.0), and done in the weight's own
        dtype, so a float32 weight under ``mixed_float16`` is never rounded to float16."""
        updates = []
        with _keras.variables_in_true_dtype():
            for weight, mask, _ in self.pruning_vars:
                value = masked(tf.convert_to_tensor(weight), tf.convert_to_tensor(mask))
                updates.append(weight.assign(value, read_value=False))
        return tf.group(*updates)

    def call(self, inputs, training=None, **kwargs):
        # The only per-step work: masked weights ← 0 (after the previous optimizer update).
        # No step counter, no schedule query, no top_k: a fixed mask needs none of them.
        self.mask_weights()
        if self._call_accepts_training:
            return self.layer.call(inputs, training=training, **kwargs)
        return self.layer.call(inputs, **kwargs)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        schedule = config.pop("pruning_schedule")
        tfmot = _keras.tfmot()
        objects = dict(schedules.schedule_classes(), ConstantSparsity=tfmot.ConstantSparsity,
                       PolynomialDecay=tfmot.PolynomialDecay)
        config["pruning_schedule"] = keras.utils.deserialize_keras_object(schedule, custom_objects=objects)
        config["layer"] = keras.layers.deserialize(config.pop("layer"))
        wrapper = cls(**config)
        _loading.record(wrapper)
        return wrapper


def masked(value, mask):
    """``value`` where ``mask != 0``, exactly +0.0 elsewhere (also where ``value`` is -0.0, inf or
    NaN): the op the wrapper runs on every kernel at every forward pass.

    ``keep = cast(mask != 0)`` makes it idempotent whatever the mask holds (a 0.5 would
    otherwise scale the kernel at each call); ``multiply_no_nan(value, keep)`` is ``value * 1``
    (bit-exact) where kept and +0.0 where ``keep`` is 0; ``mask`` may have another dtype than
    ``value``. It gives the same bits as the previous ``tf.where(mask != 0, value, zeros_like(value))``
    (TensorFlow's ``SelectV2``) at half its time on Conv-2's kernels (BENCHMARKS.md, "Core:
    training-step overhead"). Neither ``value * mask`` (-0.0 for a negative masked weight, NaN for
    a masked inf) nor ``value * mask + 0.0`` (in a graph, Grappler's constant folding removes the
    ``+ 0.0``) would do.

    Example:
        >>> masked(tf.constant([-1.5, 2.0, float("nan"), -0.0]), tf.constant([0.0, 1.0, 0.0, 1.0])).numpy()
        array([ 0.,  2.,  0., -0.], dtype=float32)
    """
    return tf.math.multiply_no_nan(value, tf.cast(tf.not_equal(mask, 0), value.dtype))


def wrapper_class() -> type:
    """tfprune's ``FixedMaskWrapper`` class (a subclass of TF-MOT's ``PruneLowMagnitude``),
    made, and TF-MOT imported, on the first call."""
    if "FixedMaskWrapper" not in globals():
        parent = _keras.tfmot().PruneLowMagnitude
        globals()["FixedMaskWrapper"] = types.new_class(
            "FixedMaskWrapper", (_FixedMaskWrapper, parent),
            exec_body=lambda ns: ns.update(__module__=__name__, __doc__=_FixedMaskWrapper.__doc__))
    return globals()["FixedMaskWrapper"]


def __getattr__(name):
    if name == "FixedMaskWrapper":
        return wrapper_class()
    if name == "PruneLowMagnitude":
        return _keras.tfmot().PruneLowMagnitude
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def custom_objects() -> "dict[str, object]":
    """The classes needed to load a model saved with tfprune (and TF-MOT) wrappers."""
    objects = {"FixedMaskWrapper": wrapper_class(), "PruneLowMagnitude": _keras.tfmot().PruneLowMagnitude}
    objects.update(schedules.schedule_classes())
    return objects


def custom_object_scope():
    """The one scope to load models saved with tfprune wrappers (.h5, .keras or SavedModel).

    When the block ends, the masks of the wrappers loaded in it are checked: a value other
    than 0 and 1 (a damaged or edited file) is a ``ValueError`` naming the layer. Without this
    scope Keras cannot rebuild the wrappers: an .h5 or .keras file fails inside Keras (which
    tfprune cannot intercept), and a SavedModel loads with "revived" layers that every tfprune
    function refuses with a message pointing here.

    Example:
        >>> tfprune.prune_at_init(model, "magnitude", sparsity=0.5).save("pruned.h5")
        >>> with tfprune.custom_object_scope():
        ...     again = keras.models.load_model("pruned.h5")
        >>> int(sum(mask.sum() for mask in tfprune.get_masks(again).values()))   # 50% of 1,088 kept
        544
    """
    return _loading.LoadScope(custom_objects())


def load_model(path, **kwargs):
    """``tf_keras.models.load_model(path)`` inside :func:`custom_object_scope`: .h5, .keras or
    SavedModel. A mask holding anything but 0 and 1 is refused with a ``ValueError`` naming
    ``path`` and the layer."""
    with _loading.LoadScope(custom_objects(), source=str(path)):
        return keras.models.load_model(path, **kwargs)


def _wrappers(model) -> "dict[str, keras.layers.Wrapper]":
    return {_keras.inner_layer(l).name: l for l in model.layers if _keras.is_pruning_wrapper(l)}


def is_wrapped(model) -> bool:
    """Whether ``model`` has any pruning wrapper (tfprune's or TF-MOT's), or holds masks (Keras 3)."""
    if _keras3.is_keras3(model):
        from tfprune._keras3 import masked
        return bool(masked.get_masks(model))
    return bool(_wrappers(model))


def _kernel_masks(wrapper) -> "dict[str, tf.Variable]":
    """``{key: mask variable}`` for every prunable kernel of the wrapped layer (one for a
    Dense/Conv/EinsumDense layer, four for a MultiHeadAttention), matched by variable."""
    masks = {id(weight): mask for weight, mask, _ in wrapper.pruning_vars}
    out = {}
    for key, kernel in _keras.layer_kernels(wrapper).items():
        if id(kernel) not in masks:
            raise ValueError(f"layer {wrapper.layer.name!r}: its wrapper does not mask the kernel {key!r}.")
        out[key] = masks[id(kernel)]
    return out


def check_masks(model, masks: Mapping[str, np.ndarray], argument: str = "masks") -> "dict[str, np.ndarray]":
    """Validates ``masks`` against ``model``'s prunable layers; returns them as float32 arrays."""
    if _keras3.is_keras3(model):
        from tfprune._keras3 import layers, masked
        return masked.check_masks(model, masks, layers.prunable_kernels(model), argument)
    if not isinstance(masks, Mapping):
        raise TypeError(f"{argument}: expected a dict {{layer name: 0/1 array}}, got {type(masks).__name__}.")
    kernels = _keras.prunable_kernels(model)
    unknown = sorted(set(masks) - set(kernels))
    if unknown:
        raise ValueError(f"{argument}: no prunable layer named {unknown} in model {model.name!r}; prunable layers: {list(kernels)}.")
    return _mask_values.checked(masks, {name: kernels[name].shape for name in masks}, argument)


def wrap(model, pruning_schedule=None):
    """Returns ``model`` with every prunable layer in a :class:`FixedMaskWrapper` (masks all ones).

    Like ``tfmot.sparsity.keras.prune_low_magnitude``, the new model reuses ``model``'s layer
    objects (and so its weights); only the wrappers are new.
    """
    _keras.check_model(model)
    _keras.require_prunable(model)

    wrapper = wrapper_class()

    def clone(layer):
        if _keras.is_pruning_wrapper(layer) or not _keras.is_prunable(layer):
            return layer
        return wrapper(layer, pruning_schedule=pruning_schedule)

    return keras.models.clone_model(model, clone_function=clone)


def apply_masks(model, masks: Mapping[str, np.ndarray]):
    """Sets fixed masks on ``model`` and zeroes the masked weights; returns the masked model.

    A plain model is first wrapped (every prunable layer; kernels missing from ``masks`` get an
    all-ones mask); a wrapped model is updated in place and returned. Always use the return
    value. Keys are those of :func:`tfprune._keras.prunable_kernels`: the original layer names,
    and ``"<attention layer>/query"`` (``key``, ``value``, ``attention_output``) for the four
    kernels of a MultiHeadAttention. Masks must hold only 0 and 1.

    On a wrapped model the given masks *replace* its masks as they are: a weight pruned before
    and kept now restarts from its stored value, 0.0 (set the weights afterwards, as the lottery
    engine does when it rewinds). To prune further within the existing masks, use
    :func:`tfprune.compute_masks` / :func:`tfprune.prune_at_init`, which never revive a weight.

    Example:
        >>> masks = tfprune.compute_masks(model, "synflow", 0.9)
        >>> pruned = tfprune.apply_masks(model, masks)
        >>> all((tfprune.get_masks(pruned)[name] == mask).all() for name, mask in masks.items())
        True

    A Keras 3 model (``import keras``; any backend) is masked by :mod:`tfprune._keras3.masked`
    instead: keys are layer-name paths (``fc1``, ``mha/query``), masks are enforced by kernel
    constraints and saved in ``.keras`` files that load without custom objects.
    """
    if _keras3.is_keras3(model):
        from tfprune._keras3 import masked
        return masked.apply_masks(model, masks)
    _keras.check_model(model)
    _refuse_sparse_execution(model)
    masks = check_masks(model, masks)
    if not is_wrapped(model):
        model = wrap(model)
    variables = {key: variable for wrapper in _wrappers(model).values() for key, variable in _kernel_masks(wrapper).items()}
    missing = [name for name in masks if name not in variables]
    if missing:
        raise ValueError(f"masks: layers {missing} are prunable but not wrapped in model {model.name!r}.")
    kernels = _keras.prunable_kernels(model)
    for name, mask in masks.items():
        variables[name].assign(mask)
        kernel = kernels[name]
        kernel.assign(np.where(mask != 0, kernel.numpy(), np.zeros((), kernel.dtype.as_numpy_dtype)))
    return model


def _refuse_sparse_execution(model) -> None:
    """Masks of sparse-execution layers (:mod:`tfprune.sparse_dense`) are fixed by their index."""
    sparse = [_keras.inner_layer(l).name for l in model.layers if hasattr(l, "sync_kernel")]
    if sparse:
        raise ValueError(f"model: layers {sparse} of {model.name!r} run sparse (execution='sparse'/'auto'), their "
                         "masks are fixed; allowed: a model without them, e.g. tfprune.strip(model).")


def get_masks(model) -> "dict[str, np.ndarray]":
    """``{key: float32 0/1 mask}`` of every prunable kernel, keyed as
    :func:`tfprune._keras.prunable_kernels` says (the layer name; ``"mha/query"`` etc. for the
    kernels of a MultiHeadAttention ``"mha"``).

    For wrapped layers this is the wrapper's mask; for plain layers the kernel's nonzero
    pattern (so it also reads the sparsity of a stripped model). For a Keras 3 model, see
    :func:`tfprune._keras3.masked.get_masks` (keys are layer-name paths).
    """
    if _keras3.is_keras3(model):
        from tfprune._keras3 import masked
        return masked.get_masks(model)
    _keras.check_model(model)
    masks = {}
    for layer in _keras.prunable_layers(model).values():
        if _keras.is_pruning_wrapper(layer):
            for name, mask in _kernel_masks(layer).items():
                values = _loading.check_mask(name, mask.numpy(),
                                             hint=": set masks with tfprune.apply_masks, not through the variables")
                masks[name] = values.astype(np.float32)
        else:
            for name, kernel in _keras.layer_kernels(layer).items():
                masks[name] = (kernel.numpy() != 0).astype(np.float32)
    return masks


def _masked_weight_values(layer):
    """The inner layer's weights with every pruning mask applied (+0.0, never -0.0)."""
    inner = _keras.inner_layer(layer)
    if hasattr(layer, "sync_kernel"):  # sparse execution (tfprune.sparse_dense): kernel <- kept values
        layer.sync_kernel()
    values = [np.array(v) for v in inner.get_weights()]
    if _keras.is_pruning_wrapper(layer):
        index = {id(v): i for i, v in enumerate(inner.weights)}
        for weight, mask, _ in layer.pruning_vars:
            i = index.get(id(weight))
            if i is not None:
                values[i] = np.where(mask.numpy() != 0, values[i], 0).astype(values[i].dtype)
    return keras_utils.positive_zeros(values)[0]


def strip(model):
    """A new, plain tf_keras model: wrappers (tfprune's and TF-MOT's) removed, masks applied.

    Masked weights are exactly +0.0 (never -0.0). The result shares nothing with ``model``.

    Example:
        >>> pruned = tfprune.prune_at_init(model, "magnitude", sparsity=0.9)
        >>> plain = tfprune.strip(pruned)
        >>> [layer.name for layer in plain.layers]
        ['fc1', 'fc2', 'output']
        >>> kernels = [layer.kernel.numpy() for layer in plain.layers]
        >>> int(sum((k == 0).sum() for k in kernels)), any(np.signbit(k[k == 0]).any() for k in kernels)
        (979, False)
        >>> plain.save("pruned_plain.h5")

    A Keras 3 model gives a plain Keras 3 model (:func:`tfprune._keras3.masked.strip`; a
    subclassed one is stripped in place).
    """
    if _keras3.is_keras3(model):
        from tfprune._keras3 import masked
        return masked.strip(model)
    _keras.check_model(model)

    def clone(layer):
        inner = _keras.inner_layer(layer)
        return inner.__class__.from_config(inner.get_config())

    plain = keras.models.clone_model(model, clone_function=clone)
    sources = {_keras.inner_layer(l).name: l for l in model.layers}
    for layer in plain.layers:
        source = sources.get(layer.name)
        if source is not None and layer.weights:
            layer.set_weights(_masked_weight_values(source))
    return plain
