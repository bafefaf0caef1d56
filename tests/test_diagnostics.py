"""A model that is not learning is noticed, once, with the likely cause named."""
import warnings

import numpy as np
import tf_keras as keras

from tfprune.diagnostics import NotLearningWarning, chance_problem


def _model(softmax=False):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(4, activation="softmax" if softmax else None)])


def test_logits_into_a_probability_loss_warn_once_naming_from_logits():
    rng = np.random.default_rng(0)
    x, y = rng.random((256, 8), dtype=np.float32), rng.integers(0, 4, 256)
    model = _model()
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.set_weights([w * 0 for w in model.get_weights()])  # uniform outputs: the loss is exactly chance
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=3, verbose=0, callbacks=[NotLearningWarning()])
    messages = [str(w.message) for w in caught if "chance level" in str(w.message)]
    assert len(messages) == 1 and "from_logits=True" in messages[0], messages


def test_a_learning_model_and_a_matching_loss_do_not_warn():
    rng = np.random.default_rng(0)
    x = rng.random((512, 8), dtype=np.float32)
    y = x[:, :4].argmax(axis=1)
    model = _model()
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=5, verbose=0, callbacks=[NotLearningWarning()])
    assert not [w for w in caught if "chance level" in str(w.message)]
    assert chance_problem(model, {"loss": 0.3, "accuracy": 0.9}, "accuracy") is None
