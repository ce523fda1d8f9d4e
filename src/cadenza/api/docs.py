"""``/docs``: Swagger UI over ``/openapi.json``, from files this package ships.

The Swagger UI distribution (``swagger-ui-dist`` from the npm registry, with its
licence and notice) lives in ``static/swagger-ui`` and is served under
``/docs/assets``, so the page works on a host without internet access. The page has
no inline script (its start-up code is a file of its own) and sends a Content
Security Policy that lets it load nothing from another origin; the validator badge,
which would call an external service, is switched off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "swagger-ui"
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"

DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
"""Swagger UI sets inline styles from script, hence ``'unsafe-inline'`` for styles
only; scripts, fetches and images stay on this origin."""

_START = """window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: document.getElementById("swagger-ui").dataset.openapi,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""


def _page(openapi_url: str, title: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi_url}"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/start.js"></script>
</body>
</html>
"""


def add_docs_routes(app: FastAPI, openapi_url: str, title: str) -> None:
    """Serve the docs page, its start-up script and the Swagger UI assets."""
    page = _page(openapi_url, title)

    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_POLICY})

    async def start() -> Response:
        return Response(_START, media_type="text/javascript")

    app.add_api_route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{DOCS_PATH}/start.js", start, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")
