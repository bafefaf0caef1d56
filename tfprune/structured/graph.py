"""Channel dependency analysis of a tf_keras Sequential / Functional model.

Every channel (last axis, ``channels_last``) of every tensor is traced back to a *unit*: one
output channel of one layer. Units of Dense/Conv layers are prunable; units of the model
input, of the output layer, of layers in ``exclude`` and of layers tfprune does not know
are *pinned* (never removed). Layers relate channels as follows:

* **producers** (Dense, Conv1D/2D/3D, ``groups=1``): read their input channels (their kernel
  has one input slice per channel) and make fresh output units;
* **channel-wise** layers keep the channel layout: BatchNormalization (on the last axis),
  DepthwiseConv1D/2D with ``depth_multiplier=1``, activations (Activation, ReLU, LeakyReLU,
  ELU, ThresholdedReLU), Dropout and its variants, GaussianNoise, ActivityRegularization,
  pooling (max, average, global), ZeroPadding, Cropping, UpSampling, Identity;
* **Flatten** repeats the layout once per spatial position (NHWC order: flat index
  ``(h·W + w)·C + c``), so a removed channel removes every matching row of the next Dense;
* **element-wise merges** (Add, Subtract, Multiply, Average, Maximum, Minimum) *couple* the
  channels at the same position of their inputs: coupled units are removed together (a
  residual block's convolutions and its shortcut form one group);
* **Concatenate** on the channel axis stacks its inputs' layouts (channel indices offset);
  on another axis it couples them like a merge.

Coupled units form *channel sets*; a set is removable only if none of its units is pinned
and no member reaches the model output directly. Sets with the same producer layers form a
*group* (one layer's channels, or a residual stage's), the unit of per-layer allocation.

Any other layer that receives a removable channel cannot be handled: :meth:`ChannelGraph.
check_removable` raises a :class:`StructuredPruningError` naming the layer and its class
(pass ``exclude=[...]`` to keep the channels that reach it).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfprune import _keras


class StructuredPruningError(ValueError):
    """The model contains a layer or a pattern that structured pruning cannot handle."""


# The role of each layer kind (see tfprune._keras.layer_kind) in the channel graph; layers of
# any other kind are opaque.
_ROLES = {"input": "input", "dense": "producer", "conv": "producer", "depthwise": "channelwise",
          "batchnorm": "channelwise", "activation": "channelwise", "identity": "channelwise",
          "pooling": "channelwise", "resize": "channelwise", "padding": "padding", "flatten": "flatten",
          "merge": "merge", "concat": "concat"}

SUPPORTED = ("Dense, Conv1D/2D/3D (groups=1), BatchNormalization (last axis), DepthwiseConv1D/2D "
             "(depth_multiplier=1), Activation, ReLU, LeakyReLU, ELU, ThresholdedReLU, Dropout and variants, "
             "GaussianNoise, ActivityRegularization, Max/Average/Global pooling, ZeroPadding, Cropping, UpSampling, "
             "Identity, Flatten, Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate")


def _channels_last(layer) -> bool:
    fmt = getattr(layer, "data_format", None)
    return fmt in (None, "channels_last")


def classify(layer, input_rank: "int | None" = None) -> "tuple[str, str | None]":
    """``(role, why_not)``: role in input / producer / channelwise / padding / flatten / merge /
    concat / opaque; for ``opaque``, why the layer cannot carry removable channels.
    ``input_rank``: rank of the layer's (first) input, batch included."""
    cls, kind = type(layer).__name__, _keras.layer_kind(layer)
    unsupported = {"wrapper": "a pruning wrapper (strip the model first)",
                   "transposed": f"{cls} (transposed convolutions are not supported)",
                   "separable": f"{cls} (separable convolutions are not supported)"}
    if kind in unsupported:
        return "opaque", unsupported[kind]
    if kind not in _ROLES:
        return "opaque", f"{cls} (not a layer structured pruning knows how to pass channels through)"
    if kind == "depthwise" and layer.depth_multiplier != 1:
        return "opaque", f"{cls} with depth_multiplier={layer.depth_multiplier} (only 1 is supported)"
    if kind in ("dense", "conv") and getattr(layer, "groups", 1) != 1:
        return "opaque", f"{cls} with groups={layer.groups} (only groups=1 is supported)"
    if kind == "batchnorm":
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        rank = input_rank if input_rank is not None else len(layer.input_shape)
        if len(axis) != 1 or axis[0] % rank != rank - 1:
            return "opaque", f"{cls} on axis {layer.axis} (only the last, channel axis is supported)"
    if not _channels_last(layer):
        return "opaque", f"{cls} with data_format={layer.data_format!r} (only channels_last)"
    return _ROLES[kind], None


@dataclasses.dataclass
class Step:
    """One layer application in topological order."""

    layer: object
    role: str
    why_not: "str | None"
    inputs: "list[tuple]"     # tensor keys
    outputs: "list[tuple]"    # tensor keys
    input_shapes: "list[tuple]"
    output_shapes: "list[tuple]"


@dataclasses.dataclass
class Group:
    """Channels removed together: ``sets[j]`` are the unit ids of channel j (one per producer,
    more when a merge couples several channels of one layer)."""

    name: str
    producers: "tuple[str, ...]"
    sets: "list[np.ndarray]"

    @property
    def channels(self) -> int:
        return len(self.sets)


def _key(tensor) -> tuple:
    layer, node_index, tensor_index = tensor._keras_history
    return (layer.name, int(node_index), int(tensor_index))


def _shape(tensor) -> tuple:
    return tuple(tensor.shape.as_list()) if hasattr(tensor.shape, "as_list") else tuple(tensor.shape)


class ChannelGraph:
    """Units, their coupling and the groups of a model; see the module docstring.

    Example:
        >>> graph = ChannelGraph(model)
        >>> [(g.name, g.channels) for g in graph.groups]   # the output layer is pinned
        [('fc1', 32), ('fc2', 16)]
    """

    def __init__(self, model, exclude=()):
        _keras.check_model(model)
        self.model = model
        self.exclude = tuple([exclude] if isinstance(exclude, str) else exclude)
        names = {layer.name for layer in model.layers}
        unknown = [n for n in self.exclude if n not in names]
        if unknown:
            raise ValueError(f"exclude: no layer named {unknown} in model {model.name!r}.")
        self.steps = self._topological_steps(model)
        self.layer_order = {step.layer.name: i for i, step in enumerate(self.steps)}
        self.unit_layer: "list[str | None]" = []
        self.unit_channel: "list[int]" = []
        self.pin_reason: "list[str | None]" = []
        self.tensor_units: "dict[tuple, np.ndarray]" = {}
        self.producer_units: "dict[str, np.ndarray]" = {}
        self.blocked: "dict[int, tuple[str, str]]" = {}  # unit → (layer, why) it may not pass through
        self._parent: "list[int]" = []
        output_layers = self._output_producers(model)
        for step in self.steps:
            self._visit(step, output_layers)
        for tensor in model.outputs:
            for u in self.tensor_units[_key(tensor)]:
                self._pin(int(u), "reaches a model output")
        self._finish()

    # --------------------------------------------------------------- graph walk
    @staticmethod
    def _topological_steps(model) -> "list[Step]":
        by_depth = model._nodes_by_depth
        steps, seen = [], set()
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                layer = node.layer
                if id(layer) in seen:
                    raise StructuredPruningError(
                        f"layer {layer.name!r} ({type(layer).__name__}) is used more than once in model "
                        f"{model.name!r}; structured pruning needs every layer applied once (no shared layers).")
                seen.add(id(layer))
                inputs = [] if node.is_input else list(tf.nest.flatten(node.keras_inputs))
                outputs = list(tf.nest.flatten(node.outputs))
                role, why = classify(layer, len(_shape(inputs[0])) if inputs else None)
                steps.append(Step(layer, role, why, [_key(t) for t in inputs], [_key(t) for t in outputs],
                                  [_shape(t) for t in inputs], [_shape(t) for t in outputs]))
        return steps

    def _output_producers(self, model) -> "set[str]":
        """Producers that reach a model output without passing through another producer (the
        model's last layer(s) with weights, e.g. the Dense before a final Softmax layer)."""
        by_output = {key: step for step in self.steps for key in step.outputs}
        found, stack, seen = set(), [_key(t) for t in model.outputs], set()
        while stack:
            key = stack.pop()
            if key in seen or key not in by_output:
                continue
            seen.add(key)
            step = by_output[key]
            if step.role == "producer":
                found.add(step.layer.name)
            else:
                stack.extend(step.inputs)
        return found

    def _new_units(self, count: int, layer: "str | None", pin: "str | None") -> np.ndarray:
        start = len(self.unit_layer)
        for c in range(count):
            self.unit_layer.append(layer)
            self.unit_channel.append(c)
            self.pin_reason.append(pin)
            self._parent.append(start + c)
        return np.arange(start, start + count)

    def _pin(self, unit: int, reason: str) -> None:
        if self.pin_reason[unit] is None:
            self.pin_reason[unit] = reason

    def _find(self, u: int) -> int:
        parent = self._parent
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)

    def _fresh_outputs(self, step, layer_name, pin):
        for key, shape in zip(step.outputs, step.output_shapes):
            channels = shape[-1] if shape and shape[-1] is not None else 0
            self.tensor_units[key] = self._new_units(int(channels), layer_name, pin)

    def _visit(self, step: Step, output_layers) -> None:
        layer, name = step.layer, step.layer.name
        ins = [self.tensor_units[k] for k in step.inputs]
        if step.role == "input":
            self._fresh_outputs(step, None, "model input")
        elif step.role == "producer":
            pin = None
            if name in output_layers:
                pin = "output layer"
            elif name in self.exclude:
                pin = "excluded"
            units = self._new_units(int(step.output_shapes[0][-1]), name, pin)
            self.tensor_units[step.outputs[0]] = units
            self.producer_units[name] = units
        elif step.role in ("channelwise", "padding"):
            self.tensor_units[step.outputs[0]] = ins[0]
        elif step.role == "flatten":
            spatial = int(np.prod([d for d in step.input_shapes[0][1:-1]], dtype=np.int64)) if len(step.input_shapes[0]) > 2 else 1
            if any(d is None for d in step.input_shapes[0][1:]):
                self._block(ins, name, f"{type(layer).__name__} of an input with unknown dimensions "
                                       f"{step.input_shapes[0]}")
                self._fresh_outputs(step, name, "unknown layout")
                return
            self.tensor_units[step.outputs[0]] = np.tile(ins[0], spatial)
        elif step.role == "merge":
            lengths = {len(u) for u in ins}
            if len(lengths) != 1:
                self._block(ins, name, f"{type(layer).__name__} with broadcasting over the channel axis "
                                       f"(input channels {[len(u) for u in ins]})")
                self._fresh_outputs(step, name, "broadcast merge")
                return
            for other in ins[1:]:
                for a, b in zip(ins[0], other):
                    self._union(int(a), int(b))
            self.tensor_units[step.outputs[0]] = ins[0]
        elif step.role == "concat":
            rank = len(step.output_shapes[0])
            if layer.axis % rank == rank - 1:
                self.tensor_units[step.outputs[0]] = np.concatenate(ins)
            else:
                for other in ins[1:]:
                    for a, b in zip(ins[0], other):
                        self._union(int(a), int(b))
                self.tensor_units[step.outputs[0]] = ins[0]
        else:  # opaque
            self._block(ins, name, step.why_not)
            self._fresh_outputs(step, name, f"output of {type(layer).__name__} layer {name!r}")

    def _block(self, ins, layer_name, why) -> None:
        for units in ins:
            for u in units:
                self.blocked.setdefault(int(u), (layer_name, why))

    # ------------------------------------------------------------------- groups
    def _finish(self) -> None:
        roots = np.array([self._find(u) for u in range(len(self._parent))], dtype=np.int64)
        self.unit_root = roots
        members: "dict[int, list[int]]" = {}
        for u, r in enumerate(roots):
            members.setdefault(int(r), []).append(u)
        self.set_pin: "dict[int, str | None]" = {}
        self.set_blocked: "dict[int, tuple[str, str] | None]" = {}
        groups: "dict[tuple, list[np.ndarray]]" = {}
        for root, units in members.items():
            pin = next((self.pin_reason[u] for u in units if self.pin_reason[u] is not None), None)
            if pin is None and any(self.unit_layer[u] is None for u in units):
                pin = "model input"
            self.set_pin[root] = pin
            self.set_blocked[root] = next((self.blocked[u] for u in units if u in self.blocked), None)
            if pin is not None:
                continue
            producers = tuple(sorted({self.unit_layer[u] for u in units}, key=lambda n: self.layer_order[n]))
            groups.setdefault(producers, []).append(np.array(sorted(units), dtype=np.int64))
        ordered = sorted(groups.items(), key=lambda kv: self.layer_order[kv[0][0]])
        self.groups = []
        for producers, sets in ordered:
            sets.sort(key=lambda s: (self.layer_order[self.unit_layer[s[0]]], self.unit_channel[s[0]]))
            self.groups.append(Group("+".join(producers), producers, sets))

    def group_of(self, layer_name: str) -> "list[Group]":
        """The groups holding channels of ``layer_name`` (empty if all its channels are pinned)."""
        return [g for g in self.groups if layer_name in g.producers]

    def pinned_producers(self) -> "dict[str, str]":
        """``{producer layer: why some of its channels are kept}``."""
        out = {}
        for name, units in self.producer_units.items():
            for u in units:
                reason = self.set_pin[int(self.unit_root[u])]
                if reason is not None:
                    out.setdefault(name, reason)
        return out

    def check_removable(self, groups) -> None:
        """Raises :class:`StructuredPruningError` if channels of ``groups`` would have to pass
        through a layer that cannot be handled."""
        for group in groups:
            for s in group.sets:
                blocked = self.set_blocked[int(self.unit_root[s[0]])]
                if blocked is not None:
                    layer_name, why = blocked
                    raise StructuredPruningError(
                        f"layer {layer_name!r} ({why}) receives channels of {', '.join(map(repr, group.producers))}, "
                        f"which structured pruning would remove. Supported layers between a pruned layer and its "
                        f"consumers: {SUPPORTED}. Pass exclude={list(group.producers)!r} to keep those channels.")
