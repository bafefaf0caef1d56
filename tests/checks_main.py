"""The command line of the one-backend check scripts (tests/*_checks.py run per KERAS_BACKEND in
their own process): run the named ``check_*`` functions (all by default), print ``ok <check>``
after each, stop at the first failure with its traceback."""
import time


def run(namespace: dict, names, backend: str) -> None:
    """Runs ``namespace[name]()`` for each of ``names`` (default: every ``check_*`` in ``namespace``)."""
    names = names or [name for name in namespace if name.startswith("check_")]
    start = time.time()
    for name in names:
        t = time.time()
        namespace[name]()
        print(f"ok {name} ({time.time() - t:.1f} s)", flush=True)
    print(f"all {len(names)} checks passed on {backend} in {time.time() - start:.1f} s")
