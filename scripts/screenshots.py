"""Screenshots of the dashboard for the README, made from a real ``cadenza serve``.

Starts ``cadenza serve`` on a fresh SQLite database in a temporary directory and a
loopback target on 127.0.0.1, sets up a small shop through the REST API (a job with
three endpoints, an interval hint, a pause, planner rules that wait for approval),
lets it run for ``--seconds`` while the checkout endpoint fails now and then, then
signs in with Debian's chromium and saves the overview, an endpoint page and a run
page under ``docs/screenshots/``. Nothing leaves 127.0.0.1.

Run: ``.venv/bin/python scripts/screenshots.py [--seconds 40] [--out docs/screenshots]``
(needs the dev extra and /usr/bin/chromium: ``make install-dev browser``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from cadenza.testing.live import LiveServer, LoopbackTarget, serve

CHROMIUM = "/usr/bin/chromium"
WIDTH = 1280


def api(server: LiveServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the local server only
        f"{server.url}/api/v1{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return json.loads(answer.read() or b"null")


def endpoint(
    target: LoopbackTarget, name: str, path: str, every: float, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "request": {"method": "GET", "url": target.base + path, "timeout_seconds": 5},
        "baseline": {"interval_seconds": every},
        "min_interval_seconds": 1,
        **extra,
    }


def set_up(server: LiveServer, target: LoopbackTarget) -> dict[str, str]:
    job = api(server, "POST", "/jobs", {"name": "storefront", "tags": ["web", "prod"]})
    ids = {}
    for body in (
        endpoint(target, "homepage", "/", 3, tier="health", description="Front page answers."),
        endpoint(target, "checkout", "/checkout", 2, tier="critical"),
        endpoint(target, "search-index", "/search", 4, tier="batch"),
        endpoint(target, "slack-alert", "/slack", 60, tier="alert"),
    ):
        ids[body["name"]] = api(server, "POST", f"/jobs/{job['id']}/endpoints", body)["id"]
    watch = {
        "rules": [
            {
                "name": "watch-checkout",
                "when": [{"kind": "outcome", "statuses": ["failure"]}],
                "then": [{"verb": "interval_hint", "interval_seconds": 1, "ttl_seconds": 8}],
                "cooldown_seconds": 6,
            }
        ],
        "reason": "Watch closely while checkout fails.",
    }
    api(server, "PUT", f"/endpoints/{ids['checkout']}/planner", watch)
    ask = {
        "approval": True,
        "rules": [
            {
                "name": "reindex-when-slow",
                "when": [{"kind": "metric", "metric": "success_streak", "op": "ge", "value": 3}],
                "then": [{"verb": "interval_hint", "interval_seconds": 30, "ttl_seconds": 3600}],
                "cooldown_seconds": 600,
            }
        ],
        "reason": "Relax the index checks once they are steady; a person approves.",
    }
    api(server, "PUT", f"/endpoints/{ids['search-index']}/planner", ask)
    hint = {"interval_seconds": 1.5, "ttl_seconds": 900, "reason": "deploy 1.42"}
    api(server, "POST", f"/endpoints/{ids['homepage']}/hints/interval", hint)
    pause = {"until": "2100-01-01T06:00:00Z", "reason": "quiet during the sale"}
    api(server, "POST", f"/endpoints/{ids['slack-alert']}/pause", pause)
    return ids


def flap(target: LoopbackTarget, stop: threading.Event) -> None:
    """Checkout fails for a few seconds every ten; search is slow but fine."""
    target.respond("/search", 200, {"status": "ok", "indexed": 1204})
    tick = 0
    while not stop.wait(1.0):
        tick += 1
        failing = tick % 10 in (4, 5, 6)
        target.respond(
            "/checkout", 503 if failing else 200, {"status": "down" if failing else "ok"}
        )


def sign_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/sign-in")
    page.get_by_label("E-mail").fill(server.email)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/")


def shoot(server: LiveServer, ids: dict[str, str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        sign_in(page, server)
        page.screenshot(path=str(out / "overview.png"), full_page=True)
        page.goto(f"{server.url}/endpoints/{ids['checkout']}")
        page.wait_for_selector(".chart .uplot")
        page.screenshot(path=str(out / "endpoint.png"), full_page=True)
        failed = api(server, "GET", f"/runs?endpoint_id={ids['checkout']}&status=failure&limit=1")
        runs = failed["items"] or api(server, "GET", "/runs?limit=1")["items"]
        page.goto(f"{server.url}/runs/{runs[0]['id']}")
        page.screenshot(path=str(out / "run.png"), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="How long to let it run.")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    stop = threading.Event()
    env = {"CADENZA_PLANNER_DEBOUNCE_SECONDS": "1"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        LoopbackTarget() as target,
        serve(Path(tmp), env) as server,
    ):
        flapper = threading.Thread(target=flap, args=(target, stop), daemon=True)
        flapper.start()
        ids = set_up(server, target)
        time.sleep(args.seconds)
        stop.set()
        shoot(server, ids, args.out.resolve())
    print(f"Screenshots written to {args.out}/")


if __name__ == "__main__":
    main()
