"""fvcore's Registry as every slowmask registry uses it: a part may be registered under a
short name (the string a config uses: "cube", "hog"), and a name nobody registered fails
with one error that lists the registered names.

Every registry builds its entries one way, `REGISTRY.build(name, cfg, **context)`, which
calls `entry.from_config(cfg, **context)`: `cfg` the run's config, `context` by keyword
what the caller knows beyond it (a dataset's split, a mask's grid and ratio). Each
registry's docstring names its context.
"""

from typing import Any, List, Optional

from fvcore.common.registry import Registry as _FvcoreRegistry

from .errors import SlowmaskError


class NotRegisteredError(SlowmaskError, KeyError, ValueError):
    """A config names a part that no module registered (a typo, or a plug-in module that
    was not imported). A KeyError (a missing key of a registry) and a ValueError (a wrong
    config value) alike."""

    def __str__(self) -> str:
        # KeyError would quote the whole message.
        return str(self.args[0])


class Registry(_FvcoreRegistry):
    """Args:
    name: the registry's name (fvcore's, e.g. "MASK").
    kind: what an entry is, for error messages (e.g. "mask generator").
    """

    def __init__(self, name: str, kind: str) -> None:
        super().__init__(name)
        self.kind = kind

    def register(self, obj: Any = None, name: Optional[str] = None) -> Any:
        """Register `obj` under `name` (default: its __name__); without `obj`, a decorator:
        `@REGISTRY.register(name="cube")`."""
        if obj is None:
            return lambda target: self.register(target, name)
        self._do_register(name or obj.__name__, obj)
        return obj

    def names(self) -> List[str]:
        """The registered names, sorted."""
        return sorted(name for name, _ in self)

    def get(self, name: str, source: str = "", advice: str = "") -> Any:
        """The entry registered as `name`. When there is none, NotRegisteredError
        "{source} {name!r} is not a registered {kind}; registered: ...", with `source`
        the config key the name came from and `advice` appended (how to add one)."""
        if name not in self:
            registered = ", ".join(repr(known) for known in self.names())
            subject = f"{source} {name!r}" if source else repr(name)
            raise NotRegisteredError(f"{subject} is not a registered {self.kind}; registered: {registered}{advice}")
        return super().get(name)

    def build(self, name: str, cfg: Any, source: str = "", advice: str = "", **context: Any) -> Any:
        """The part registered as `name`, built as every entry is:
        `entry.from_config(cfg, **context)`; `source` and `advice` as in `get`."""
        return self.get(name, source, advice).from_config(cfg, **context)


__all__ = ["NotRegisteredError", "Registry"]
