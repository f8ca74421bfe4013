"""Command-line entry points: ``cp-worker`` and ``chimerapy``."""
