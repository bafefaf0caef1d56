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
