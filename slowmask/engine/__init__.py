"""Training, evaluation and launching from a configuration (see docs/ARCHITECTURE.md)."""
