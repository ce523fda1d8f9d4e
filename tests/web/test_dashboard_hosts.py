"""No page, script or stylesheet that Cadenza serves (the dashboard and /docs) makes a
browser load anything from a host other than Cadenza's own.

Every page is fetched as a signed-in person would see it; every URL in an attribute
that makes a browser load or send something must stay on this host; every
stylesheet and script those pages load is fetched too, stylesheets are checked for
``url()`` and ``@import``, scripts for code that loads by absolute URL; and each
page's Content Security Policy names no other host. The browser tests
(``test_dashboard_browser.py``) also watch every request Chromium makes.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx2
import pytest
from web_kit import Person, make_endpoint, record_runs, sign_in

from cadenza.actions.base import Services
from cadenza.domain.model import RunStatus

pytestmark = pytest.mark.anyio

OWN = "testserver"
BASE = f"http://{OWN}"
_URL_ATTRIBUTES = frozenset(
    {"src", "href", "action", "formaction", "poster", "data", "hx-get", "hx-post", "hx-put",
     "hx-patch", "hx-delete", "data-live", "data-openapi", "xlink:href", "background"}
)  # fmt: skip
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")
_SCRIPT_LOAD = re.compile(
    r"""(?:importScripts|fetch|import|EventSource|WebSocket)\(\s*['"`](?:[a-z]+:)?//"""
    r"""|sourceMappingURL=(?:[a-z]+:)?//"""
)


class References(HTMLParser):
    """Every URL-valued attribute of a page, and its stylesheets and scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.stylesheets: list[str] = []
        self.scripts: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name in _URL_ATTRIBUTES and value:
                self.urls.append(value)
            if name == "srcset":
                self.urls += [part.split()[0] for part in value.split(",") if part.strip()]
        if tag == "link" and "stylesheet" in values.get("rel", ""):
            self.stylesheets.append(values["href"])
        if tag == "script":
            if "src" in values:
                self.scripts.append(values["src"])
            elif values.get("type") != "application/json":
                self.inline_scripts += 1


def off_host(url: str, page: str) -> bool:
    """Whether ``url`` (as found on ``page``) leads to another host."""
    target = urlsplit(urljoin(BASE + page, url.strip()))
    if target.scheme in ("data", "mailto", "about", "blob"):
        return False
    return target.netloc != OWN


def foreign_in_css(text: str, where: str) -> list[str]:
    found = []
    for match in _CSS_URL.finditer(text):
        url = match.group(1) or match.group(2)
        if not url.startswith("data:") and off_host(url, where):
            found.append(url)
    return found


async def pages(client: httpx2.AsyncClient, services: Services, person: Person) -> list[str]:
    job_id, endpoint_id = await make_endpoint(client, person, baseline={"interval_seconds": 60})
    await record_runs(services, [RunStatus.SUCCESS, RunStatus.FAILURE])
    runs = await client.get(f"/api/v1/runs?endpoint_id={endpoint_id}", headers=person.headers)
    run_id = runs.json()["items"][0]["id"]
    return [
        "/",
        f"/jobs/{job_id}",
        f"/endpoints/{endpoint_id}",
        "/runs",
        f"/runs/{run_id}",
        "/audit",
        "/keys",
        "/docs",
    ]


async def test_nothing_served_makes_a_browser_load_from_another_host(
    client: httpx2.AsyncClient, services: Services, alice: Person
) -> None:
    signed_out = (await client.get("/sign-in")).text
    await sign_in(client, alice)
    checked: dict[str, str] = {}
    assets: set[str] = set()
    for path in await pages(client, services, alice):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        checked[path] = answer.text
    checked["/sign-in"] = signed_out
    for path, html in checked.items():
        refs = References()
        refs.feed(html)
        assert refs.inline_scripts == 0, path
        assert [u for u in refs.urls if off_host(u, path)] == [], path
        assets |= {urljoin(path, u) for u in refs.stylesheets + refs.scripts}
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/start.js"} <= {
        urlsplit(a).path for a in assets
    }
    for asset in sorted(assets):
        answer = await client.get(asset)
        assert answer.status_code == 200, asset
        if urlsplit(asset).path.endswith(".css"):
            assert foreign_in_css(answer.text, asset) == [], asset
        else:
            assert _SCRIPT_LOAD.search(answer.text) is None, asset


async def test_every_page_forbids_loading_from_another_origin(
    client: httpx2.AsyncClient, services: Services, alice: Person
) -> None:
    await sign_in(client, alice)
    for path in [*await pages(client, services, alice), "/sign-in"]:
        policy = (await client.get(path)).headers["content-security-policy"]
        sources = [word for part in policy.split(";") for word in part.split()[1:]]
        assert "default-src 'self'" in policy, path
        assert set(sources) <= {"'self'", "'none'", "data:", "'unsafe-inline'"}, path


async def test_the_docs_page_turns_off_the_external_validator(
    client: httpx2.AsyncClient,
) -> None:
    start = await client.get("/docs/start.js")
    assert "validatorUrl: null" in start.text
    assert "/openapi.json" in (await client.get("/docs")).text
