"""fvcore's Registry, where a part may also be registered under a short name: the
string a config uses ("cube", "hog")."""

from typing import Any, Optional

from fvcore.common.registry import Registry as _FvcoreRegistry


class Registry(_FvcoreRegistry):
    def register(self, obj: Any = None, name: Optional[str] = None) -> Any:
        """Register `obj` under `name` (default: its __name__); without `obj`, a decorator:
        `@REGISTRY.register(name="cube")`."""
        if obj is None:
            return lambda target: self.register(target, name)
        self._do_register(name or obj.__name__, obj)
        return obj


__all__ = ["Registry"]
