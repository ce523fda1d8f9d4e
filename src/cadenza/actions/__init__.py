"""The catalogue of what a user or an agent can do (ACTIONS.md)."""
