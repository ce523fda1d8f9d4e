"""Notification transports other than HTTP (which goes through the dispatcher)."""

from cadenza.adapters.notify.smtp import SmtpMailer

__all__ = ["SmtpMailer"]
