"""The server-rendered dashboard: Jinja2 pages and htmx controls over the catalogue.

``mount_dashboard(app, services, gate)`` adds it to the app that serves the API; the
composition root passes the API's session mechanism as ``gate``.
"""

from cadenza.web.gate import SessionGate
from cadenza.web.mount import mount_dashboard

__all__ = ["SessionGate", "mount_dashboard"]
