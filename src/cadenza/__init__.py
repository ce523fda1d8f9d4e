"""Cadenza: an adaptive HTTP job scheduler."""

__version__ = "0.1.0"
