"""The REST API, generated from the action registry."""
