"""One backend's half of tests/test_keras3_hub.py: ``KERAS_BACKEND=<b> python tests/keras3_hub_case.py DIR``.

Real architectures nobody here wrote: keras-hub backbones built from their constructors with random
weights (nothing downloaded), inside a user's classifier. Prunes at init, trains a few steps on
synthetic data and checks that the masks are exact and fixed; prints one line per check.
"""
import os
import sys
import warnings

import numpy as np

import tfprune  # noqa: F401  (registers tfprune's Keras 3 classes before keras loads files)
import keras
import keras_hub

warnings.simplefilter("ignore")
out_dir = sys.argv[1]
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)


def check_exact_and_fixed(model, method, sparsity, x, y, train_loss, **kwargs):
    pruned = tfprune.prune_at_init(model, method, sparsity, **kwargs)
    masks = tfprune.get_masks(pruned)
    total = sum(m.size for m in masks.values())
    kept = int(sum(m.sum() for m in masks.values()))
    assert kept == round(total * (1 - sparsity)), (method, kept, total)
    report = tfprune.sparsity_report(pruned)
    assert report.kept == kept and report.params == total, (report.kept, report.params)
    pruned.compile(keras.optimizers.Adam(1e-2), train_loss)
    pruned.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = tfprune.get_masks(pruned)
    assert all(np.array_equal(masks[k], after[k]) for k in masks), f"{method}: masks changed in fit"
    from tfprune._keras3.layers import prunable_kernels
    for key, kernel in prunable_kernels(pruned).items():
        value = np.asarray(keras.ops.convert_to_numpy(kernel.value))
        assert not np.any(value[masks[key] == 0]), f"{method}: {key} has pruned weights that are not 0"
    print(f"ok {method}: {kept}/{total} kept, fixed through fit")
    return pruned


def bert_classifier():
    """A 2-layer BERT-style text classifier (token inputs); a fresh one for each method (pruning
    reuses the user's layers, as TF-MOT's prune_low_magnitude does)."""
    bert = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
                                         intermediate_dim=32, max_sequence_length=8)
    inputs = {k: keras.Input((8,), dtype="int32", name=k) for k in ("token_ids", "segment_ids", "padding_mask")}
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(bert(inputs)["pooled_output"]))


classifier = bert_classifier()
x = {"token_ids": rng.integers(0, 50, (24, 8)).astype("int32"), "segment_ids": np.zeros((24, 8), "int32"),
     "padding_mask": np.ones((24, 8), "int32")}
y = (np.arange(24) % 2).astype("int32")
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
keys = list(tfprune.compute_scores(classifier, "magnitude"))
assert "bert_backbone/transformer_layer_0/self_attention_layer/query" in keys, keys
assert "bert_backbone/transformer_layer_1/feedforward_intermediate_dense" in keys and keys[-1] == "head", keys
for method in ("random", "magnitude", "snip"):
    data = {"data": (x, y), "loss": loss} if method == "snip" else {}
    pruned = check_exact_and_fixed(bert_classifier(), method, 0.9, x, y, loss, **data)
try:
    tfprune.compute_masks(classifier, "synflow", 0.9)
    raise AssertionError("SynFlow accepted token inputs")
except ValueError as e:
    assert "integer inputs" in str(e), e
    print("ok synflow refuses token inputs")
names = [row.name for row in tfprune.sparsity_report(pruned).not_prunable]
# the backbone's auto name is bert_backbone_<n>: the key is built from the name the model holds
assert any(n.startswith("bert_backbone") and n.endswith("/token_embedding") for n in names), names
path = os.path.join(out_dir, "bert.keras")
pruned.save(path)
loaded = keras.saving.load_model(path)
again = tfprune.get_masks(loaded)
masks = tfprune.get_masks(pruned)
assert set(again) == set(masks) and all(np.array_equal(masks[k], again[k]) for k in masks)
np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.predict(x, verbose=0)),
                           keras.ops.convert_to_numpy(pruned.predict(x, verbose=0)), rtol=1e-5, atol=1e-6)
print("ok .keras round trip of the pruned BERT classifier")

# A small ViT image classifier (continuous inputs: SynFlow applies).
def vit_classifier():
    vit = keras_hub.models.ViTBackbone(image_shape=(16, 16, 3), patch_size=4, num_layers=2, num_heads=2,
                                       hidden_dim=16, mlp_dim=32)
    image = keras.Input((16, 16, 3))
    return keras.Model(image, keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling1D()(vit(image))))


xi, yi = rng.random((24, 16, 16, 3)).astype("float32"), (np.arange(24) % 3).astype("int32")
for method in ("synflow", "snip"):
    data = {"data": (xi, yi), "loss": loss} if method == "snip" else {}
    check_exact_and_fixed(vit_classifier(), method, 0.8, xi, yi, loss, **data)
print("done")
