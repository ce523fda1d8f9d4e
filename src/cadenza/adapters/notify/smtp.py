"""``SmtpMailer``: ``cadenza.ports.Mailer`` over the standard library's ``smtplib``.

The blocking client runs in a thread, one mail at a time per call. Before
connecting, the server's name is resolved and every address checked by the same
SSRF policy as HTTP targets (``AddressPolicy``), so a tenant cannot point a channel
at the database or a metadata service; the allowlist opens internal relays.
``security`` is ``tls`` (implicit TLS, usually port 465), ``starttls`` (587) or
``none`` (a relay on a trusted network); certificates are verified.
"""

from __future__ import annotations

import asyncio
import ipaddress
import smtplib
import socket
import ssl
from email.message import EmailMessage

from cadenza.adapters.http.ssrf import AddressPolicy
from cadenza.domain.errors import UnsafeTarget
from cadenza.ports import Mail

_TIMEOUT = 15.0


class SmtpMailer:
    def __init__(self, policy: AddressPolicy | None = None) -> None:
        self._policy = policy or AddressPolicy()

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send, mail)

    def _check(self, host: str, port: int) -> None:
        self._policy.check_hostname(host)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from exc
        for *_, sockaddr in found:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            try:
                self._policy.check_address(address, host)
            except UnsafeTarget as exc:
                raise ValueError(f"refused by the SSRF guard: {exc.message}") from exc

    def _send(self, mail: Mail) -> None:
        self._check(mail.host, mail.port)
        message = EmailMessage()
        message["Subject"] = mail.subject
        message["From"] = mail.sender
        message["To"] = ", ".join(mail.recipients)
        message.set_content(mail.text)
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if mail.security == "tls":
            client = smtplib.SMTP_SSL(mail.host, mail.port, timeout=_TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(mail.host, mail.port, timeout=_TIMEOUT)
        with client:
            if mail.security == "starttls":
                client.starttls(context=context)
            if mail.username:
                client.login(mail.username, mail.password)
            client.send_message(message)
