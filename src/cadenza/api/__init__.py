"""The REST API, generated from the action registry."""

from cadenza.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
