"""Energy counts of Keras 3 models on one backend, in one process, printed as JSON.

``KERAS_BACKEND`` is fixed per process, so tests/test_energy.py runs this script once per
backend: ``KERAS_BACKEND=jax python tests/keras3_energy_checks.py masks.npz``. ``masks.npz``
holds the 0/1 kernel masks (keyed ``<model>/<layer>``) the test made for the tf_keras twins of
the models below. For each model it prints the counts and totals of: the plain model dense
(``masks={}``), the plain model with the masks, the model masked by ``tfprune.apply_masks`` (its
own masks), and ``tfprune.sparsity_report(masked).energy``.
"""
import dataclasses
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfprune  # noqa: E402
from tfprune.energy import count_layers  # noqa: E402

L = keras.layers


def mlp():
    return keras.Sequential([keras.Input((4,)), L.Dense(3, name="fc1"), L.Dense(2, name="fc2")])


def conv():
    inputs = keras.Input((6, 6, 2))
    x = L.Conv2D(3, 3, name="conv")(inputs)                              # 6x6x2 -> 4x4x3
    x = L.DepthwiseConv2D(3, name="dw")(x)                               # -> 2x2x3
    x = L.Conv2DTranspose(2, 2, strides=2, name="up")(x)                 # -> 4x4x2
    x = L.SeparableConv2D(4, 3, padding="same", name="sep")(x)           # -> 4x4x4
    x = L.BatchNormalization(name="bn")(x)
    x = L.Flatten(name="flat")(x)
    return keras.Model(inputs, L.Dense(2, name="fc")(x))


def summary(estimate):
    return {"counts": [dataclasses.asdict(c) for c in estimate.rows],
            "totals": [estimate.compute_pj, estimate.register_pj, estimate.weights_pj, estimate.index_pj,
                       estimate.activations_pj, estimate.total_pj],
            "macs": estimate.macs, "notes": list(estimate.notes)}


def main(path):
    stored = np.load(path)
    out = {"backend": keras.backend.backend()}
    for name, build in (("mlp", mlp), ("conv", conv)):
        keras.utils.set_random_seed(0)
        model = build()
        masks = {k.split("/", 1)[1]: stored[k] for k in stored.files if k.startswith(name + "/")}
        masked = tfprune.apply_masks(model, masks)
        assert any(type(layer).__name__ == "MaskedLayer" for layer in masked.layers)
        out[name] = {
            "dense": summary(tfprune.estimate_energy(model, masks={})),
            "masks": summary(tfprune.estimate_energy(model, masks)),
            "wrapped": summary(tfprune.estimate_energy(masked)),
            "report": summary(tfprune.sparsity_report(masked).energy),
            "count_layers": [dataclasses.asdict(c) for c in count_layers(masked, masks)[0]],
            "layer_macs": {layer.name: tfprune.energy.layer_macs(layer) for layer in masked.layers},
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
