"""Interpreter construction for the two op resolvers we verify and benchmark under.

* ``"default"``: the stock resolver, which applies the default XNNPACK delegate to every op it
  supports; this is what an Android ``Interpreter`` does unless told otherwise.
* ``"builtin"``: ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``: TFLite's own kernels only
  (the only ones that run block-sparse FULLY_CONNECTED weights natively).

The runtime is ``ai_edge_litert`` (LiteRT, what ships on Android); ``tf.lite.Interpreter`` is used
only when ``ai_edge_litert`` is not installed.  This module never imports TensorFlow unless it has
to, so benchmark subprocesses measure the runtime alone.
"""

from __future__ import annotations

import numpy as np

RESOLVERS = ("default", "builtin")


def runtime():
    """Returns ``(Interpreter class, OpResolverType enum, backend name)``."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType  # pylint: disable=import-outside-toplevel

        return Interpreter, OpResolverType, "ai_edge_litert"
    except ImportError:  # pragma: no cover - ai_edge_litert is a declared dependency
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        return tf.lite.Interpreter, tf.lite.experimental.OpResolverType, "tf.lite"


def check_resolver(resolver: str) -> str:
    """``resolver`` if it is one of :data:`RESOLVERS`.  The message has tfprune.checks' format,
    written out here: this module is loaded by the benchmark worker, which must not import
    tfprune (it would import TensorFlow)."""
    if resolver not in RESOLVERS:
        raise ValueError(f"resolver: got {resolver!r}; allowed: {', '.join(map(repr, RESOLVERS))}.")
    return resolver


def make_interpreter(model_content=None, model_path=None, resolver="default", num_threads=None):
    """Builds (and allocates) an interpreter for ``resolver`` (see module docstring)."""
    interpreter_cls, resolver_enum, _ = runtime()
    kwargs = {}
    if check_resolver(resolver) == "builtin":
        kwargs["experimental_op_resolver_type"] = resolver_enum.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if num_threads is not None:
        kwargs["num_threads"] = int(num_threads)
    if model_content is not None:
        kwargs["model_content"] = bytes(model_content)
    else:
        kwargs["model_path"] = str(model_path)
    with _quiet():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice
        interpreter = interpreter_cls(**kwargs)
        interpreter.allocate_tensors()
    return interpreter


def _quiet():
    """tfprune's filter of native log noise (cheap to import: tfprune loads TensorFlow lazily)."""
    try:
        from tfprune.logs import quiet_native_logs  # pylint: disable=import-outside-toplevel
    except ImportError:  # the benchmark worker may run without tfprune on its path
        import contextlib  # pylint: disable=import-outside-toplevel
        return contextlib.nullcontext()
    return quiet_native_logs()


def run_samples(model_content, inputs: dict, resolver: str, unbatched: int | None = None,
                batch: int = 64) -> dict:
    """Runs a model on every sample of ``inputs``; returns its outputs stacked the same way.

    ``inputs`` maps the signature's input names to arrays whose first axis indexes samples.  The
    first ``unbatched`` samples (default: all) run one at a time (batch 1, as on a phone), the
    rest in batches of ``batch`` (the input is resized; if the model cannot be resized, one at a
    time).  Models without a signature run one at a time, positionally (input/output detail
    order), and their outputs are keyed ``"output_<i>"``.
    """
    interpreter = make_interpreter(model_content=model_content, resolver=resolver)
    n = len(next(iter(inputs.values())))
    single = n if unbatched is None else min(n, unbatched)
    signatures = interpreter.get_signature_list()
    if not signatures:
        return _run_positional(interpreter, inputs, n)
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    dtypes = {name: d["dtype"] for name, d in runner.get_input_details().items()}

    def run(start, stop):
        return runner(**{name: np.asarray(x[start:stop], dtype=dtypes[name])
                         for name, x in inputs.items()})

    results: dict = {}
    for i in range(single):
        _append(results, run(i, i + 1))
    start = single
    if start < n:
        try:
            _append(results, run(start, min(n, start + batch)))
            start = min(n, start + batch)
        except Exception:  # pylint: disable=broad-except  (the input cannot be resized)
            batch = 1
    for i in range(start, n, batch):
        _append(results, run(i, min(n, i + batch)))
    return {name: np.concatenate(v, axis=0) for name, v in results.items()}


def _append(results: dict, out: dict) -> None:
    for name, value in out.items():
        results.setdefault(name, []).append(np.array(value))


def _run_positional(interpreter, inputs: dict, n: int) -> dict:
    in_details = interpreter.get_input_details()
    out_details = interpreter.get_output_details()
    arrays = list(inputs.values())
    results: dict = {}
    for i in range(n):
        for det, x in zip(in_details, arrays):
            interpreter.set_tensor(det["index"], np.asarray(x[i:i + 1], dtype=det["dtype"]))
        interpreter.invoke()
        for j, det in enumerate(out_details):
            results.setdefault(f"output_{j}", []).append(interpreter.get_tensor(det["index"]).copy())
    return {name: np.concatenate(v, axis=0) for name, v in results.items()}
