"""Fixed 0/1 masks on Keras 3 models, native to Keras 3, on every backend (TensorFlow, JAX, PyTorch).

**How a mask is enforced.** The kernel's masked entries are set to +0.0 and the kernel variable
gets a :class:`MaskConstraint` (``variable.constraint``), which every Keras 3 optimizer applies
after each update (``fit``, ``optimizer.apply`` / ``apply_gradients`` in a custom loop):
``w ← where(mask, c(w), +0.0)``, where ``c`` is the constraint the kernel already had (it runs
first, the mask second). So masked weights are exactly +0.0 after every step (never -0.0, never
NaN), kept ones train, and the forward pass is the layer's own (no extra op, ``predict``
unchanged). A weight changed outside an optimizer (``set_weights``, ``assign``) is not re-masked
until the next step. On PyTorch, where Keras runs eagerly, the constraint re-masks sparse kernels
in place (:mod:`tfprune._keras3.eager_mask`).

**Where a mask is stored.**

* Sequential and Functional models (of those exact classes) are rebuilt, like TF-MOT's
  ``prune_low_magnitude``, with every top-level layer that holds a masked kernel inside a
  :class:`MaskedLayer` that reuses the user's layer object (and its weights). The wrapper holds
  one mask per kernel in it, at any depth (``mha/query``,
  ``backbone/transformer_layer_0/self_attention/query``: a composite layer's config does not carry
  its sublayers' constraints, so the masks live with the top-level layer). Its config holds the
  kernels' relative paths and shapes, never the masks; the masks are written by its
  ``save_own_variables``, so ``model.save("m.keras")`` and ``keras.saving.load_model("m.keras")``
  (no custom objects, no scope: both classes are registered as ``tfprune>...``) give back the
  same masks, enforced again. A file whose masks hold anything but 0/1 is refused on load.
  On load, masks are matched to the kernels by relative path, or, when auto-named sublayers
  were renamed in between (a custom layer whose sublayers have default names such as
  ``dense_3``), by position (shapes checked); the keys are then the new names.
* Any other model (subclassed models, Functional subclasses such as keras-hub backbones) is
  masked **in place**: the constraints are set on its kernels and the same model is returned.
  Its masks are **not saved** by ``model.save``: the saved kernels keep their zeros, but a loaded
  copy no longer enforces them. :func:`apply_masks` says so with a :class:`MasksNotSavedWarning`;
  keep the masks (``get_masks``) and apply them again after loading. To get a model whose
  masks are saved, put it in a Functional model: ``keras.Model(inputs, model(inputs))``.

The masks are ``keras.Variable`` objects (float32, non-trainable) that Keras does *not* track
as model variables: JAX's ``fit`` passes model variables as state and purges their values, but
the constraint, which runs in the optimizer, must read the mask. So ``model.weights`` and
``get_weights`` do not include masks. On JAX a compiled train step holds the masks as
constants: :func:`apply_masks` on an already-masked model drops the model's compiled functions
(Keras makes them again on the next ``fit``/``evaluate``/``predict``); a user's own jitted
loop must be traced again.

Mixed precision: kernels are float32 variables under ``mixed_float16``/``mixed_bfloat16`` and
masks are applied in the variable's dtype; the wrapper computes in its layer's dtype policy.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import keras
import numpy as np
from keras import ops

from tfprune._keras3 import layers as _layers
from tfprune._keras3.constraint import _PACKAGE, MaskConstraint, mask_variable  # noqa: F401  (MaskConstraint: API)
from tfprune._keras3.constraint import bind as _bind
from tfprune._keras3.constraint import new_mask as _new_mask
from tfprune._mask_values import checked, non_binary


class MasksNotSavedWarning(UserWarning):
    """A model masked in place (subclassed): ``model.save`` does not keep its masks."""


def _numpy(variable) -> np.ndarray:
    value = variable.value if isinstance(variable, keras.Variable) else variable
    return np.array(ops.convert_to_numpy(value))


def _positive_zeros(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f" or "float" in values.dtype.name:
        return np.where(values == 0, np.zeros((), values.dtype), values)
    return values


class _Untracked:
    """A plain holder: Keras does not track what is in it (see the module docstring)."""

    def __init__(self, variables):
        self.variables = list(variables)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedLayer(keras.layers.Wrapper):
    """Holds the fixed masks of the kernels inside one top-level layer, and saves them.

    Made by :func:`apply_masks` (use that). ``mask_paths`` are the kernels' paths relative to
    ``layer`` (``""`` for its own kernel, ``"query"``, ``"transformer_layer_0/self_attention/query"``),
    ``mask_shapes`` their shapes: both in the config, so that the masks exist before a file's
    values are loaded into them. ``call`` passes every argument to ``layer`` unchanged. Named
    ``masked_<layer name>``; tfprune keys everything by the user's names (the wrapper is
    transparent).
    """

    _tfprune_masked_layer = True

    def __init__(self, layer, mask_paths=(), mask_shapes=(), **kwargs):
        kwargs.setdefault("name", f"masked_{layer.name}")
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        if len(mask_paths) != len(mask_shapes):
            raise ValueError(f"MaskedLayer {self.name!r}: {len(mask_paths)} mask_paths but {len(mask_shapes)} mask_shapes.")
        self.mask_paths = tuple(str(p) for p in mask_paths)
        self.mask_shapes = tuple(tuple(int(d) for d in s) for s in mask_shapes)
        self._masks = _Untracked(_new_mask(s, f"mask_{i}") for i, s in enumerate(self.mask_shapes))
        self._kernels = None
        self.supports_masking = bool(getattr(layer, "supports_masking", False))

    @property
    def masks(self) -> list:
        """The mask variables, in ``mask_paths`` order."""
        return list(self._masks.variables)

    def _key(self, path: str) -> str:
        return f"{self.layer.name}/{path}" if path else self.layer.name

    def attach(self) -> bool:
        """Binds each mask to its kernel's constraint (once the wrapped layer is built); idempotent."""
        if self._kernels is not None:
            return True
        if not self.layer.built:
            return False
        found = _layers.layer_kernels(self.layer, include=_layers.INCLUDE_CHOICES)
        if all(p in found for p in self.mask_paths):
            kernels = [found[p] for p in self.mask_paths]
        else:  # auto-named sublayers renamed since the masks were made: match by position, shapes equal
            kernels = next((list(c.values()) for c in (found, _layers.layer_kernels(self.layer))
                            if [tuple(v.shape) for v in c.values()] == list(self.mask_shapes)), None)
            if kernels is None:
                missing = [self._key(p) for p in self.mask_paths if p not in found]
                raise ValueError(f"MaskedLayer {self.name!r}: no kernel at {missing} in layer {self.layer.name!r} "
                                 f"(its kernels: {[self._key(p) for p in found]}).")
        for path, shape, kernel, mask in zip(self.mask_paths, self.mask_shapes, kernels, self._masks.variables):
            if tuple(kernel.shape) != shape:
                raise ValueError(f"MaskedLayer {self.name!r}: kernel {self._key(path)!r} has shape {tuple(kernel.shape)}, "
                                 f"its mask {shape}.")
            _bind(kernel, mask)
        self._kernels = kernels
        return True

    def build(self, *args, **kwargs):
        # The wrapped layer builds itself on its first call (its build signature is its own).
        self.attach()

    def _direct(self) -> bool:
        """Whether ``call`` may call the wrapped layer's ``call`` and skip its ``__call__`` (one
        Keras ``__call__``, ~45 µs eager on PyTorch, per masked layer and step): a built layer of
        exactly one of Keras' kernel classes (whose ``__call__`` adds nothing the wrapper's own,
        in the same dtype policy, has not done), with no activity regularizer, quantization or
        rematerialization."""
        layer = self.layer
        return (layer.built and type(layer) in _layers.PRUNABLE_CLASSES and layer.activity_regularizer is None
                and getattr(layer, "quantization_mode", None) is None and getattr(layer, "_remat_mode", None) is None
                and layer.dtype_policy.name == self.dtype_policy.name)

    def call(self, *args, **kwargs):
        if self._kernels is not None and self._direct():
            return self.layer.call(*args, **kwargs)
        outputs = self.layer(*args, **kwargs)
        self.attach()
        return outputs

    def compute_mask(self, inputs, previous_mask=None):
        # Used only where the wrapped layer has not set its outputs' masks (a direct call).
        return self.layer.compute_mask(inputs, previous_mask)

    def get_config(self):
        return {**super().get_config(), "mask_paths": list(self.mask_paths),
                "mask_shapes": [list(s) for s in self.mask_shapes]}

    def save_own_variables(self, store):
        for i, mask in enumerate(self._masks.variables):
            store[f"{i}"] = _numpy(mask)

    def load_own_variables(self, store):
        masks = self._masks.variables
        if len(store.keys()) != len(masks):
            raise ValueError(f"MaskedLayer {self.name!r}: the file holds {len(store.keys())} masks, the layer "
                             f"{len(masks)} ({[self._key(p) for p in self.mask_paths]}).")
        for i, (path, mask) in enumerate(zip(self.mask_paths, masks)):
            values = np.asarray(store[f"{i}"])
            if tuple(values.shape) != tuple(mask.shape):
                raise ValueError(f"mask {self._key(path)!r}: shape {tuple(values.shape)} in the file, "
                                 f"{tuple(mask.shape)} in the layer.")
            problem = non_binary(values)
            if problem:
                raise ValueError(f"mask {self._key(path)!r} holds values other than 0 and 1 ({problem[0]}, {problem[1]}): "
                                 "the file is damaged or was edited; set masks with tfprune.apply_masks.")
            mask.assign(values.astype(np.float32))
        self.attach()


# ---------------------------------------------------------------------------------------------

def _functional_class():
    from keras.src.models.functional import Functional

    return Functional


def is_rebuilt(model) -> bool:
    """Whether :func:`apply_masks` rebuilds ``model`` with wrappers (a Sequential or Functional
    model of exactly those classes) rather than masking it in place."""
    return type(model) in (keras.Sequential, _functional_class())


def _attach_all(model) -> None:
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if _layers.is_masked_layer(layer):
            layer.attach()


def _forget_compiled(model) -> None:
    """Drops the compiled train/test/predict functions (JAX bakes the masks into them)."""
    for name in ("train_function", "test_function", "predict_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)


def _input_like(tensor):
    layer = tensor._keras_history.operation
    kwargs = {"sparse": True} if getattr(tensor, "sparse", False) else {}
    return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=layer.name, **kwargs)


def _clone(model, clone_function):
    """``keras.models.clone_model`` keeping the input layers' names (Functional models)."""
    inputs = None
    if not isinstance(model, keras.Sequential):
        inputs = keras.tree.map_structure(_input_like, model.input)
    return keras.models.clone_model(model, input_tensors=inputs, clone_function=clone_function)


def clone(model):
    """A copy of a Sequential/Functional ``model`` (same layer graph and configs, input layer
    names kept) with freshly initialised weights; copy them with ``set_weights``. Raises what
    ``keras.models.clone_model`` raises for models it cannot clone (subclassed ones)."""
    return _clone(model, None)


def check_masks(model, masks, kernels: "Mapping[str, object]", argument: str = "masks") -> "dict[str, np.ndarray]":
    """``masks`` as float32 0/1 arrays, checked against ``kernels`` ({key: variable}): keys known,
    shapes equal, values 0 or 1. One-line ``ValueError``/``TypeError`` otherwise."""
    if not isinstance(masks, Mapping):
        raise TypeError(f"{argument}: expected a dict {{kernel key: 0/1 array}}, got {type(masks).__name__}.")
    unknown = [k for k in masks if k not in kernels]
    if unknown:
        raise ValueError(f"{argument}: no prunable kernel {unknown} in model {model.name!r}; "
                         f"allowed keys: {list(kernels)}.")
    masks = {key: mask if isinstance(mask, np.ndarray) else np.asarray(ops.convert_to_numpy(mask))
             for key, mask in masks.items()}
    return checked(masks, {key: kernels[key].shape for key in masks}, argument, name=repr,
                   allowed="0/1 arrays (bool, int or float)")


def _wanted(model, masks, include) -> "tuple[dict, list]":
    """(every maskable kernel {key: variable}, the keys to hold masks for, in model order)."""
    everything = _layers.prunable_kernels(model, include=_layers.INCLUDE_CHOICES)
    default = _layers.prunable_kernels(model, include=include or ())
    wanted = [k for k in everything if k in default or k in masks or mask_variable(everything[k]) is not None]
    return everything, wanted


def _wrap(model, wanted: "list[str]"):
    paths: "dict[str, list[str]]" = {}
    for key in wanted:
        top, _, rest = key.partition("/")
        paths.setdefault(top, []).append(rest)

    def clone_function(layer):
        if _layers.is_masked_layer(layer) or layer.name not in paths:
            return layer
        kernels = _layers.layer_kernels(layer, include=_layers.INCLUDE_CHOICES)
        wrapper = MaskedLayer(layer, mask_paths=paths[layer.name],
                              mask_shapes=[tuple(kernels[p].shape) for p in paths[layer.name]])
        wrapper.attach()
        return wrapper

    return _clone(model, clone_function)


def apply_masks(model, masks: "Mapping[str, object]", include=None):
    """Sets fixed 0/1 masks on a Keras 3 model and zeroes the masked weights (+0.0); returns the
    masked model (always use the return value).

    Keys are the kernel keys of :func:`tfprune._keras3.layers.prunable_kernels`; an Embedding
    table may be given a mask too (``include=("embedding",)`` also gives every other Embedding an
    all-ones mask). Kernels without a mask in ``masks`` keep theirs (all ones at first).

    A Sequential/Functional model is rebuilt with :class:`MaskedLayer` wrappers around the
    user's layer objects (the masks are saved with the model); an already-masked model is updated
    in place (masks replaced, no double wrapping); any other model is masked in place, with a
    :class:`MasksNotSavedWarning` (see the module docstring).
    """
    _layers.check_model(model)
    include = _layers.check_include(include)
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks: expected a dict {{kernel key: 0/1 array}}, got {type(masks).__name__}.")
    _attach_all(model)
    everything, wanted = _wanted(model, masks, include)
    if not wanted:
        raise ValueError(f"model: {model.name!r} has no prunable kernel (Dense, EinsumDense, Conv1D/2D/3D or their "
                         "transposes, at any depth).")
    masks = check_masks(model, masks, everything)
    if is_rebuilt(model):
        unwrapped = {key.partition("/")[0] for key in wanted if mask_variable(everything[key]) is None}
        if unwrapped:
            model = _wrap(model, wanted)
            _attach_all(model)
    else:
        warnings.warn(
            f"model {model.name!r} ({type(model).__name__}) is not a Sequential or Functional model: it is masked in place, "
            "and model.save() does NOT keep its masks (a loaded copy keeps the zeros but no longer enforces them); keep "
            "tfprune.get_masks(model) and apply them again after loading, or wrap it: keras.Model(inputs, model(inputs)).",
            MasksNotSavedWarning, stacklevel=3)
        for key in wanted:
            if mask_variable(everything[key]) is None:
                _bind(everything[key], _new_mask(everything[key].shape, "mask"))
    missing = [k for k in masks if mask_variable(everything[k]) is None]
    if missing:
        raise ValueError(f"masks: kernels {missing} are not masked by their wrappers in model {model.name!r} (wrapped "
                         "before they were given masks); apply every mask to tfprune.strip(model) instead.")
    for key, mask in masks.items():
        kernel = everything[key]
        mask_variable(kernel).assign(mask)
        values = _numpy(kernel)
        kernel.assign(np.where(mask != 0, values, np.zeros((), values.dtype)))
    _forget_compiled(model)
    return model


def get_masks(model) -> "dict[str, np.ndarray]":
    """``{key: float32 0/1 mask}`` of every prunable kernel (and every masked Embedding), in model
    order: the enforced mask where there is one, else the kernel's nonzero pattern (so it also
    reads the sparsity of a stripped or plain model)."""
    _layers.check_model(model)
    _attach_all(model)
    everything = _layers.prunable_kernels(model, include=_layers.INCLUDE_CHOICES)
    default = _layers.prunable_kernels(model)
    out = {}
    for key, kernel in everything.items():
        mask = mask_variable(kernel)
        if mask is not None:
            values = _numpy(mask)
            problem = non_binary(values)
            if problem:
                raise ValueError(f"mask {key!r} holds values other than 0 and 1 ({problem[0]}, {problem[1]}); masks are 0/1 "
                                 "by contract: set masks with tfprune.apply_masks, not through the variables.")
        elif key in default:
            values = _numpy(kernel) != 0
        else:
            continue
        out[key] = values.astype(np.float32)
    return out


def _masked_values(layer) -> list:
    """``layer``'s weights (``layer.weights`` order) with every mask applied, +0.0 for zeros."""
    values = []
    for variable in layer.weights:
        value = _numpy(variable)
        mask = mask_variable(variable)
        if mask is not None:
            value = np.where(_numpy(mask) != 0, value, np.zeros((), value.dtype))
        values.append(_positive_zeros(value))
    return values


def strip(model):
    """A plain Keras 3 model: no wrappers, no mask constraints (the user's own constraints kept),
    masked entries +0.0, every other weight equal.

    A Sequential/Functional model gives a new model of the same class that shares nothing with
    ``model`` (compiled like it if it was). A model masked in place (subclassed) is stripped in
    place and returned: its kernels lose the mask constraints.
    """
    _layers.check_model(model)
    _attach_all(model)
    if not is_rebuilt(model):
        for kernel in _layers.prunable_kernels(model, include=_layers.INCLUDE_CHOICES).values():
            mask = mask_variable(kernel)
            if mask is not None:
                values = _numpy(kernel)
                kernel.assign(_positive_zeros(np.where(_numpy(mask) != 0, values, np.zeros((), values.dtype))))
                kernel.constraint = kernel.constraint.constraint
        _forget_compiled(model)
        return model

    pairs = []

    def clone_function(layer):
        if not isinstance(layer, keras.layers.Layer):
            return layer  # an op node of the graph (keras.ops call, an Embedding's padding mask): no weights
        inner = layer.layer if _layers.is_masked_layer(layer) else layer
        fresh = inner.__class__.from_config(inner.get_config())
        pairs.append((inner, fresh))
        return fresh

    plain = _clone(model, clone_function)
    for source, fresh in pairs:
        if source.weights:
            fresh.set_weights(_masked_values(source))
    return plain


def report_rows(model, masks=None) -> "tuple[list, list]":
    """For :func:`tfprune.sparsity_report`: ``([(key, shape, params, kept)] of the masked/prunable
    kernels, [(key, shape, params, reason)] of the weight matrices left dense)``. ``masks``
    (checked) replace the model's own for their keys."""
    current = get_masks(model)
    if masks is not None:
        everything = _layers.prunable_kernels(model, include=_layers.INCLUDE_CHOICES)
        current.update(check_masks(model, masks, everything))
    rows = [(key, tuple(mask.shape), int(mask.size), int(np.count_nonzero(mask))) for key, mask in current.items()]
    dense = [(key, tuple(variable.shape), int(np.prod(variable.shape)), reason)
             for key, (variable, reason) in _layers.dense_matrices(model).items() if key not in current]
    return rows, dense
