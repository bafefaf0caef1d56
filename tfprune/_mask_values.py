"""The one check that a mask holds 0/1 values, shared by the tf_keras and Keras 3 paths (numpy only)."""
import numpy as np


def non_binary(values) -> "tuple[str, str] | None":
    """``None`` if ``values`` holds only 0 and 1, else ``('first bad value', 'n entries')``
    (values that cannot be compared with numbers count as bad, all of them)."""
    values = np.asarray(values).reshape(-1)
    try:
        bad = np.asarray(~((values == 0) | (values == 1)), dtype=bool)
    except (TypeError, ValueError):
        return repr(values[0].item() if values.size else values), f"{values.size} entries"
    if not bad.any():
        return None
    count = int(bad.sum())
    return repr(values[np.flatnonzero(bad)[0]].item()), f"{count} entr{'y' if count == 1 else 'ies'}"


def checked(masks, shapes, argument: str, name=str, allowed: str = "0/1 arrays") -> "dict[str, np.ndarray]":
    """``{key: float32 0/1 array}`` from ``masks`` (keys already known), each checked against
    ``shapes[key]``; every problem in one one-line ``ValueError`` that starts with ``argument``
    (keys written with ``name``: ``str`` or ``repr``)."""
    out, problems = {}, []
    for key, mask in masks.items():
        mask, expected = np.asarray(mask), tuple(shapes[key])
        if tuple(mask.shape) != expected:
            problems.append(f"{name(key)}: mask shape {tuple(mask.shape)} != kernel shape {expected}")
            continue
        problem = non_binary(mask)
        if problem:
            problems.append(f"{name(key)}: mask values must be 0 or 1, got {problem[0]} ({problem[1]})")
            continue
        out[key] = mask.astype(np.float32)
    if problems:
        hint = f"; allowed: {allowed}" if any("0 or 1" in p for p in problems) else ""
        raise ValueError(f"{argument}: " + "; ".join(problems) + hint + ".")
    return out
