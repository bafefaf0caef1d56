"""Layer families by Keras class name: the one table both Keras seams resolve against their own
``layers`` module (:func:`tfprune._keras.layer_kind` for tf_keras, :mod:`tfprune._keras3.counts`
for Keras 3). Pure data: importing it imports no Keras.

Most specific first (a transposed convolution is also a ConvND): the first family whose classes
a layer is an instance of names it. A class name that one Keras lacks (``RMSNormalization`` in
tf_keras) is skipped by :func:`resolve`.
"""

FAMILIES = (
    ("input", ("InputLayer",)),
    ("transposed", ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")),
    ("separable", ("SeparableConv1D", "SeparableConv2D")),
    ("depthwise", ("DepthwiseConv1D", "DepthwiseConv2D")),
    ("dense", ("Dense",)),
    ("conv", ("Conv1D", "Conv2D", "Conv3D")),
    ("einsum", ("EinsumDense",)),
    ("attention", ("MultiHeadAttention",)),
    ("batchnorm", ("BatchNormalization",)),
    # normalise by the input's own statistics
    ("normalization", ("LayerNormalization", "GroupNormalization", "UnitNormalization", "RMSNormalization")),
    ("activation", ("Activation", "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU")),  # element-wise, no weights
    ("softmax", ("Softmax",)),
    ("prelu", ("PReLU",)),
    ("identity", ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
                  "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity")),  # at inference
    ("pooling", ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
                 "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
                 "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D")),
    ("resize", ("Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D")),
    ("padding", ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")),
    ("flatten", ("Flatten",)),
    ("merge", ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")),
    ("concat", ("Concatenate",)),
)


def resolve(layers_module) -> "tuple[tuple[str, tuple[type, ...]], ...]":
    """``((family, classes), ...)`` in :data:`FAMILIES`' order, with the classes that
    ``layers_module`` (``tf_keras.layers`` or ``keras.layers``) has."""
    return tuple((kind, tuple(getattr(layers_module, n) for n in names if hasattr(layers_module, n)))
                 for kind, names in FAMILIES)
