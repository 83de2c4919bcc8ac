"""Training, evaluation and launching from a configuration (see docs/ARCHITECTURE.md)."""

# The "teacher" pretraining target is registered with the checkpoint machinery it loads by.
from . import checkpoint  # noqa: F401  (imported for the registration)
