"""Configuration: PySlowFast-style YACS defaults, loading with early, clear checks."""

from slowmask.utils.errors import ConfigError

from .defaults import get_defaults
from .loading import changed_keys, load_config, write_config


def get_cfg():
    """The default configuration (mutable); merge a file or a list into it, or use
    `load_config` to do both with every check."""
    return get_defaults()


__all__ = ["ConfigError", "changed_keys", "get_cfg", "load_config", "write_config"]
