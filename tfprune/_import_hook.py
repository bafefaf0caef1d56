"""One-shot import hooks: code run around the process's first real import of one module.

:class:`ImportHook` finds its module, hands back the real spec with itself as the loader, and runs
:meth:`ImportHook.load` when the module is executed; it leaves ``sys.meta_path`` then, not when
only a spec is asked for (TensorFlow asks ``importlib.util.find_spec("keras")`` and Keras asks for
TensorFlow's before importing either). Used by :mod:`tfprune.logs` (a quiet TensorFlow import) and
:mod:`tfprune._keras3` (tfprune's Keras 3 classes registered when Keras is imported).
"""
import importlib.abc
import importlib.util
import sys


class ImportHook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Subclasses set ``name`` (a top-level module) and may override :meth:`load`."""

    name = ""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        index = sys.meta_path.index(self)
        sys.meta_path.remove(self)  # (the real finders' spec, without this finder)
        try:
            spec = importlib.util.find_spec(self.name)
        finally:
            sys.meta_path.insert(index, self)
        if spec is None or spec.loader is None:
            return spec
        self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        self.load(module)

    def load(self, module) -> None:
        """Runs the real import of ``module`` (override to wrap it)."""
        self._loader.exec_module(module)


def install(hook_class) -> None:
    """Puts a ``hook_class`` first in ``sys.meta_path``, unless its module is imported already or
    such a hook is installed."""
    if hook_class.name not in sys.modules and not any(isinstance(f, hook_class) for f in sys.meta_path):
        sys.meta_path.insert(0, hook_class())
