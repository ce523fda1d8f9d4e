"""Alerts: the tenant's channels (with a test notification each), its alert rules
and its incidents, open ones first; each through the catalogue's actions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cadenza.web.controls import control_view
from cadenza.web.core import Dashboard

INCIDENTS_SHOWN = 50


async def alerts_page(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    channels = await dashboard.call(viewer, "list_channels", {})
    rules = await dashboard.call(viewer, "list_alert_rules", {})
    incidents = await dashboard.call(viewer, "list_incidents", {"limit": INCIDENTS_SHOWN})
    names = {c.id: c.name for c in channels.items}
    data = {
        "channels": [
            (
                channel,
                control_view("test_channel", {"channel_id": channel.id}, next_url="/alerts"),
                control_view("delete_channel", {"channel_id": channel.id}, next_url="/alerts"),
            )
            for channel in channels.items
        ],
        "rules": [
            (
                rule,
                [names.get(c, c) for c in rule.channel_ids],
                control_view("delete_rule", {"rule_id": rule.id}, next_url="/alerts"),
            )
            for rule in rules.items
        ],
        "incidents": sorted(incidents.items, key=lambda i: i.resolved_at is not None),
        "create_channel": control_view("create_channel", next_url="/alerts"),
        "create_rule": control_view("create_rule", next_url="/alerts"),
    }
    template = "alerts_live.html" if request.query_params.get("part") == "live" else "alerts.html"
    return dashboard.page(request, viewer, template, data)
