"""What a notice looks like on each kind of channel.

A generic webhook gets a small JSON document a program can route on (``event``,
``incident_id``, ``title``…); a Slack-compatible incoming webhook gets ``{"text"}``;
an e-mail gets a subject line and plain text.
"""

from __future__ import annotations

from typing import Any

from cadenza.domain.alerts import Notice


def webhook_payload(notice: Notice) -> dict[str, Any]:
    return {
        "event": f"incident.{notice.kind.value}",
        "incident_id": notice.incident_id,
        "tenant_id": notice.tenant_id,
        "rule": notice.rule,
        "subject": notice.subject,
        "title": notice.title,
        "detail": notice.detail,
        "at": notice.at.isoformat(),
    }


def slack_payload(notice: Notice) -> dict[str, Any]:
    return {"text": f"*{notice.subject_line}*\n{notice.detail}"}


def mail_text(notice: Notice) -> str:
    lines = [notice.title, "", notice.detail, "", f"At: {notice.at.isoformat()}"]
    if notice.rule:
        lines.append(f"Rule: {notice.rule}")
    if notice.incident_id:
        lines.append(f"Incident: {notice.incident_id}")
    return "\n".join(lines) + "\n"
