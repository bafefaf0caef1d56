"""A Keras 3 custom layer for tests/keras3_export_checks.py, in a module of its own: the
exporter's TensorFlow-backend subprocess (tflite_export.rebuild) imports it to load the model.

``Erfinv``: ``keras.ops.erfinv``, an op TFLite has no builtin (nor TF Select) kernel for.
"""
import keras


@keras.saving.register_keras_serializable(package="tflite_export_tests")
class Erfinv(keras.layers.Layer):
    def call(self, x):
        return keras.ops.erfinv(x)
