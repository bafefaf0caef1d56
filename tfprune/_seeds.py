"""Seeds derived from one user seed, and serialized configs re-seeded with them: the one
implementation both Keras seams use for fresh initial weights (:func:`tfprune._keras.reseeded_clone`,
:func:`tfprune._keras3.training.reseeded_clone`). Pure Python and NumPy: no Keras here."""
import zlib

import numpy as np


def derived_seed(seed: int, *labels: str) -> int:
    """A 31-bit seed that is a function of ``seed`` and the ``labels`` only (any process)."""
    entropy = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(label.encode("utf-8")) for label in labels]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)


def has_seed(node) -> bool:
    """Whether ``node`` looks like a serialized object with a fixed seed:
    ``{"class_name": str, "config": {..., "seed": <not None>}}``."""
    return (isinstance(node, dict) and isinstance(node.get("class_name"), str)
            and isinstance(node.get("config"), dict) and node["config"].get("seed") is not None)


def reseeded(node, seed: int, layer: str, is_initializer, nested_layers: bool = False, path: str = ""):
    """A copy of the serialized config ``node`` in which every seeded initializer, at any depth
    (``is_initializer(key, value)`` says which), has the seed ``derived_seed(seed, layer, <its
    path in the config>)``; nothing else changes. With ``nested_layers``, a nested layer config (a
    dict with ``class_name`` and a ``config`` holding a ``name``) names the layer of the
    initializers below it and restarts the path. Lists (and tf's ListWrapper) come back as lists."""
    if isinstance(node, dict):
        if nested_layers and "class_name" in node and isinstance(node.get("config"), dict) \
                and isinstance(node["config"].get("name"), str):
            layer, path = node["config"]["name"], ""
        out = {}
        for key, value in node.items():
            where = f"{path}/{key}" if path else str(key)
            if is_initializer(str(key), value):
                value = {**value, "config": {**value["config"], "seed": derived_seed(seed, layer, where)}}
            out[key] = reseeded(value, seed, layer, is_initializer, nested_layers, where)
        return out
    if isinstance(node, (list, tuple)):
        items = [reseeded(v, seed, layer, is_initializer, nested_layers, f"{path}/{i}") for i, v in enumerate(node)]
        return tuple(items) if isinstance(node, tuple) else items
    return node
