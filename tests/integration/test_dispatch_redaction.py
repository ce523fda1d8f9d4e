"""A target that echoes a secret in another shape (without its scheme, in another
case, base64-encoded, percent-encoded, in a header, in an error) gets none of it
stored: the capture and the error text are redacted before the run is recorded."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from aiohttp import web

from cadenza.adapters.http.redaction import Redactor, secret_forms
from cadenza.domain.model import Header, ResponseCapture, RunStatus

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_egress")]

SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TOKEN = "sk-live-Q7f3TOPSECRET9x2"
USER, PASSWORD = "svc-account", "Pa55-w0rd-HUSH"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def echoes(authorization: str) -> dict[str, str]:
    """Every shape in which the target hands the credential back."""
    _, _, credential = authorization.partition(" ")
    return {
        "as sent": authorization,
        "without the scheme": credential,
        "upper case": credential.upper(),
        "lower case": credential.lower(),
        "base64": base64.b64encode(credential.encode()).decode(),
        "base64 url-safe, unpadded": base64.urlsafe_b64encode(credential.encode())
        .decode()
        .rstrip("="),
        "percent-encoded": quote(credential, safe=""),
        "hex": credential.encode().hex(),
    }


@pytest.fixture
async def mirror() -> AsyncIterator[str]:
    """A loopback server that echoes the Authorization header in every shape, in its
    body and in a response header, and answers 500."""

    async def reflect(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        shapes = echoes(authorization)
        if authorization.lower().startswith("basic "):
            shapes["decoded"] = f"{USER}:{PASSWORD}"
            shapes["password"] = PASSWORD
            shapes["password, upper case"] = PASSWORD.upper()
        body = json.dumps(shapes) + "\n" + "\n".join(shapes.values())
        headers = {"X-Seen": shapes["without the scheme"]}
        return web.Response(status=500, text=body, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/mirror", reflect)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/mirror"
    finally:
        await runner.cleanup()


def stored_text(capture: ResponseCapture | None, error: str) -> str:
    assert capture is not None
    headers = " ".join(f"{name}: {value}" for name, value in capture.headers)
    return capture.body.decode("utf-8", "replace") + headers + error


@pytest.mark.parametrize(
    ("authorization", "needles"),
    [
        (f"Bearer {TOKEN}", [TOKEN]),
        (f"Basic {BASIC}", [BASIC, PASSWORD, f"{USER}:{PASSWORD}"]),
    ],
    ids=["bearer", "basic"],
)
async def test_no_shape_of_an_echoed_secret_is_stored(
    mirror, endpoint_for, make_dispatcher, authorization, needles
):
    endpoint = endpoint_for(mirror, headers=(Header("Authorization", authorization, secret=True),))
    result = await make_dispatcher().dispatch(endpoint, SLOT)
    assert result.status is RunStatus.FAILURE
    text = stored_text(result.response, result.error)
    assert "[redacted]" in text
    for needle in needles:
        for shape in echoes(f"x {needle}").values():
            if len(shape) >= 4 and shape != "x":
                assert shape.lower() not in text.lower(), shape


def test_the_forms_of_a_bearer_token_include_its_credential_and_encodings():
    forms = secret_forms(f"Bearer {TOKEN}")
    assert {TOKEN, base64.b64encode(TOKEN.encode()).decode(), quote(TOKEN, safe="")} <= forms


def test_redaction_leaves_text_around_the_secret_alone():
    redactor = Redactor([f"Bearer {TOKEN}"])
    assert redactor.text(f"token={TOKEN.upper()}; ok") == "token=[redacted]; ok"
    assert redactor.text("nothing secret here, bearer") == "nothing secret here, bearer"


def test_a_short_credential_is_not_redacted_everywhere():
    redactor = Redactor(["Bearer ab"])
    assert redactor.text("a cab and a bearer ab") == "a cab and a [redacted]"
