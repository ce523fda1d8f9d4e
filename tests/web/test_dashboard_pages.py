"""The dashboard in-process: sessions, CSRF, controls through the catalogue, pages."""

from __future__ import annotations

import re

import httpx2
import pytest
from web_kit import (
    HTMX,
    PASSWORD,
    Person,
    control,
    csrf_of,
    field_errors,
    make_endpoint,
    record_runs,
    sign_in,
)

from cadenza.actions import BY_NAME
from cadenza.actions.base import Services
from cadenza.domain.model import RunStatus
from cadenza.domain.planning import Proposal, ProposalStatus, Verb
from cadenza.ids import new_id

pytestmark = pytest.mark.anyio


async def audit_actions(client: httpx2.AsyncClient, person: Person, target: str) -> list[str]:
    events = await client.get(f"/api/v1/audit?target_id={target}", headers=person.headers)
    return [e["action"] for e in events.json()["items"]]


async def endpoint_state(client: httpx2.AsyncClient, person: Person, endpoint_id: str) -> dict:
    answer = await client.get(f"/api/v1/endpoints/{endpoint_id}", headers=person.headers)
    assert answer.status_code == 200
    return answer.json()


async def test_a_page_without_a_session_sends_the_person_to_sign_in_and_back(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    answer = await client.get("/jobs/job_x")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=%2Fjobs%2Fjob_x"
    page = await client.get(answer.headers["location"])
    signed = await client.post(
        "/sign-in",
        data={
            "csrf_token": csrf_of(page.text),
            "email": alice.email,
            "password": PASSWORD,
            "next": "/jobs/job_x",
        },
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/jobs/job_x"


async def test_an_htmx_request_without_a_session_is_sent_to_sign_in_by_header(
    client: httpx2.AsyncClient,
) -> None:
    answer = await client.get("/?part=live", headers=HTMX)
    assert answer.headers["hx-redirect"].startswith("/sign-in?next=")


async def test_a_wrong_password_is_refused_on_the_form_and_starts_no_session(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    page = await client.get("/sign-in")
    answer = await client.post(
        "/sign-in",
        data={"csrf_token": csrf_of(page.text), "email": alice.email, "password": "wrong one!"},
    )
    assert answer.status_code == 401
    assert "Unknown e-mail or wrong password" in answer.text
    assert "cadenza_session" not in answer.cookies
    assert (await client.get("/")).status_code == 303


async def test_signing_in_without_the_forms_token_is_refused(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    answer = await client.post("/sign-in", data={"email": alice.email, "password": PASSWORD})
    assert answer.status_code == 403
    assert "cadenza_session" not in answer.cookies


async def test_a_foreign_address_to_return_to_is_not_followed(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    page = await client.get("/sign-in?next=https://elsewhere.example/")
    assert 'name="next" value="/"' in page.text
    answer = await client.post(
        "/sign-in",
        data={
            "csrf_token": csrf_of(page.text),
            "email": alice.email,
            "password": PASSWORD,
            "next": "//elsewhere.example/",
        },
    )
    assert answer.headers["location"] == "/"


async def test_a_control_without_the_forms_token_changes_nothing(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    answer = await client.post(
        "/controls/interval_hint",
        data={"endpoint_id": endpoint_id, "interval_seconds": "60"},
        headers=HTMX,
    )
    assert answer.status_code == 403
    assert (await endpoint_state(client, alice, endpoint_id))["hints"]["interval"] is None
    assert "apply_interval_hint" not in await audit_actions(client, alice, endpoint_id)


async def test_a_bad_interval_shows_its_error_beside_the_field_and_stores_nothing(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    answer = await control(
        client, "interval_hint", token, {"endpoint_id": endpoint_id, "interval_seconds": "0"}
    )
    assert answer.status_code == 422
    errors = field_errors(answer.text)
    beside = [message for field, message in errors.items() if field.endswith("interval-seconds")]
    assert beside == ["Input should be greater than or equal to 1"]
    assert 'aria-invalid="true"' in answer.text
    assert (await endpoint_state(client, alice, endpoint_id))["hints"]["interval"] is None
    assert "apply_interval_hint" not in await audit_actions(client, alice, endpoint_id)


async def test_an_interval_hint_from_the_dashboard_is_stored_and_audited_as_the_person(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    answer = await control(
        client,
        "interval_hint",
        token,
        {
            "endpoint_id": endpoint_id,
            "interval_seconds": "60",
            "ttl_seconds": "600",
            "reason": "deploy",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["hx-trigger"] == "cadenza:changed"
    assert "Interval hint applied." in answer.text
    state = await endpoint_state(client, alice, endpoint_id)
    assert state["hints"]["interval"]["interval_seconds"] == 60
    assert state["state"]["next_run_source"] == "hint-interval"
    events = await client.get(f"/api/v1/audit?target_id={endpoint_id}", headers=alice.headers)
    hint = next(e for e in events.json()["items"] if e["action"] == "apply_interval_hint")
    assert hint["actor"] == {"kind": "user", "id": hint["actor"]["id"], "name": alice.email}
    assert hint["reason"] == "deploy"


async def test_an_endpoint_added_from_its_form_is_scheduled_and_opens_its_page(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    created = await control(client, "create_job", token, {"name": "shop", "tags": "web, prod"})
    job_id = created.headers["hx-redirect"].rsplit("/", 1)[1]
    answer = await control(
        client,
        "add_endpoint",
        token,
        {
            "job_id": job_id,
            "name": "health",
            "request.url": "https://example.com/health",
            "baseline.interval_seconds": "30",
        },
    )
    endpoint_id = answer.headers["hx-redirect"].rsplit("/", 1)[1]
    state = await endpoint_state(client, alice, endpoint_id)
    assert state["job_id"] == job_id
    assert state["state"]["next_run_source"] == "baseline-interval"
    job = await client.get(f"/api/v1/jobs/{job_id}", headers=alice.headers)
    assert job.json()["tags"] == ["web", "prod"]


async def test_the_overlap_policy_is_set_from_the_form_and_shown_on_the_endpoint_page(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    created = await control(client, "create_job", token, {"name": "shop"})
    job_id = created.headers["hx-redirect"].rsplit("/", 1)[1]
    fields = {
        "job_id": job_id,
        "name": "report",
        "request.url": "https://example.com/report",
        "baseline.interval_seconds": "30",
        "overlap": "allow",
        "max_in_flight": "4",
    }
    answer = await control(client, "add_endpoint", token, fields)
    endpoint_id = answer.headers["hx-redirect"].rsplit("/", 1)[1]
    state = await endpoint_state(client, alice, endpoint_id)
    assert (state["overlap"], state["max_in_flight"]) == ("allow", 4)
    page = await client.get(f"/endpoints/{endpoint_id}")
    assert "up to 4 runs at once" in page.text
    refused = await control(
        client, "edit_endpoint", token, {"endpoint_id": endpoint_id, "max_in_flight": "99"}
    )
    errors = field_errors(refused.text)
    assert any(key.endswith("max-in-flight") for key in errors), refused.text
    edit = await client.get(f"/controls/edit_endpoint?endpoint_id={endpoint_id}")
    assert 'value="4"' in edit.text


async def test_an_endpoint_form_with_two_baselines_says_so_beside_the_baseline(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    job_id, _ = await make_endpoint(client, alice)
    answer = await control(
        client,
        "add_endpoint",
        token,
        {
            "job_id": job_id,
            "name": "twice",
            "request.url": "https://example.com/health",
            "baseline.interval_seconds": "30",
            "baseline.cron": "*/5 * * * *",
        },
    )
    assert answer.status_code == 422
    errors = field_errors(answer.text)
    assert any(f.endswith("-baseline") and "exactly one" in m for f, m in errors.items())
    listed = await client.get(f"/api/v1/jobs/{job_id}/endpoints", headers=alice.headers)
    assert [e["name"] for e in listed.json()["items"]] == ["health"]


async def test_every_page_renders_for_a_tenant_with_runs(
    client: httpx2.AsyncClient, services: Services, alice: Person
) -> None:
    await sign_in(client, alice)
    job_id, endpoint_id = await make_endpoint(client, alice, baseline={"interval_seconds": 60})
    await record_runs(services, [RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.SUCCESS])
    runs = await client.get(f"/api/v1/runs?endpoint_id={endpoint_id}", headers=alice.headers)
    run_id = runs.json()["items"][0]["id"]
    for path in (
        "/",
        "/?part=live",
        f"/jobs/{job_id}",
        f"/endpoints/{endpoint_id}",
        f"/endpoints/{endpoint_id}?part=live",
        f"/endpoints/{endpoint_id}?part=planner",
        "/runs",
        f"/runs?endpoint_id={endpoint_id}&status=failure",
        f"/runs/{run_id}",
        "/audit",
        f"/audit?target_id={endpoint_id}",
        "/keys",
        "/alerts",
        "/alerts?part=live",
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
    endpoint_page = (await client.get(f"/endpoints/{endpoint_id}")).text
    assert endpoint_page.count('class="run src-baseline-interval') == 3
    assert 'class="run src-baseline-interval failed"' in endpoint_page
    assert "baseline-interval" in endpoint_page
    run_page = (await client.get(f"/runs/{run_id}")).text
    assert "<dt>HTTP attempts</dt>" in run_page


async def test_a_refused_filter_is_shown_beside_its_field(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    await sign_in(client, alice)
    page = await client.get("/runs?status=sideways&limit=0")
    assert page.status_code == 200
    errors = field_errors(page.text)
    assert set(errors) == {"filter-f-status", "filter-f-limit"}


async def test_another_tenants_endpoint_is_answered_as_missing(
    client: httpx2.AsyncClient, alice: Person, bob: Person
) -> None:
    _, endpoint_id = await make_endpoint(client, alice)
    token = await sign_in(client, bob)
    assert (await client.get(f"/endpoints/{endpoint_id}")).status_code == 404
    answer = await control(
        client, "interval_hint", token, {"endpoint_id": endpoint_id, "interval_seconds": "60"}
    )
    assert answer.status_code == 404
    assert (await endpoint_state(client, alice, endpoint_id))["hints"]["interval"] is None


async def test_run_now_is_offered_exactly_when_the_catalogue_has_it(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    page = (await client.get(f"/endpoints/{endpoint_id}")).text
    assert ("/controls/run_now" in page) == ("trigger_run" in BY_NAME)


async def test_workers_are_shown_exactly_when_the_catalogue_lists_them(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    await sign_in(client, alice)
    page = (await client.get("/")).text
    assert ('id="workers-h"' in page) == ("list_workers" in BY_NAME)


async def test_a_new_keys_secret_is_shown_once_and_never_listed(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    answer = await control(
        client,
        "create_key",
        token,
        {"name": "reader", "scopes": ["jobs:read", "runs:read"], "kind": "agent"},
    )
    assert answer.status_code == 200
    secret = re.search(r'value="(cdz_[^"]+)"', answer.text)
    assert secret
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert me.json()["actor"]["kind"] == "agent"
    assert sorted(me.json()["scopes"]) == ["jobs:read", "runs:read"]
    assert secret.group(1) not in (await client.get("/keys")).text


async def test_a_key_without_scopes_is_refused_beside_the_scopes(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    answer = await control(client, "create_key", token, {"name": "nothing", "kind": "user"})
    assert answer.status_code == 422
    assert set(field_errors(answer.text)) == {"c-create_key-e3b0c442-f-scopes"}


async def test_approving_a_proposal_applies_it_as_the_person(
    client: httpx2.AsyncClient, services: Services, alice: Person
) -> None:
    token = await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    assert services.planner is not None
    now = services.clock.now()
    proposal = Proposal(
        id=new_id("prp", now),
        tenant_id=alice.tenant_id,
        session_id=new_id("pls", now),
        endpoint_id=endpoint_id,
        target_id=endpoint_id,
        verb=Verb.INTERVAL_HINT,
        arguments={"interval_seconds": 45.0, "ttl_seconds": 600.0, "reason": "planner"},
        status=ProposalStatus.PENDING,
        created_at=now,
    )
    await services.planner.insert_proposal(proposal)
    page = (await client.get(f"/endpoints/{endpoint_id}?part=planner")).text
    assert f'data-proposal="{proposal.id}"' in page
    answer = await control(client, "approve", token, {"proposal_id": proposal.id})
    assert answer.status_code == 200
    state = await endpoint_state(client, alice, endpoint_id)
    assert state["hints"]["interval"]["interval_seconds"] == 45
    assert state["hints"]["interval"]["actor"]["kind"] == "user"
    assert (
        f'data-proposal="{proposal.id}"'
        not in (await client.get(f"/endpoints/{endpoint_id}?part=planner")).text
    )


async def test_the_live_feed_is_the_event_stream_of_the_catalogue(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    assert (await client.get("/live")).status_code == 303
    await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    answer = await client.get(f"/live?endpoint_id={endpoint_id}")
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.startswith("retry: ")


async def test_signing_out_clears_the_session_cookie(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    answer = await client.post("/sign-out", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in"
    assert (await client.get("/")).status_code == 303


async def test_an_edit_form_opens_filled_with_the_stored_values(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice, min_interval_seconds=15)
    form = await client.get(f"/controls/edit_endpoint?endpoint_id={endpoint_id}", headers=HTMX)
    assert form.status_code == 200
    assert 'value="https://example.com/health"' in form.text
    assert re.search(r'name="min_interval_seconds" value="15"', form.text)
    page = await client.get(f"/controls/edit_endpoint?endpoint_id={endpoint_id}&next=/x")
    assert "<h1>Save endpoint</h1>" in page.text


async def test_static_files_are_cached_for_a_year_when_their_url_names_the_version(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    await sign_in(client, alice)
    page = (await client.get("/")).text
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', page)
    assert css
    versioned = await client.get(css.group(1))
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert (await client.get("/static/app.css")).headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ("[{", "not valid JSON"),
        (
            '[{"name": "x", "when": [{"kind": "outcome", "statuses": ["failure"]}]}]',
            "Field required",
        ),
    ],
    ids=["broken JSON", "a rule without steps"],
)
async def test_planner_rules_are_validated_beside_the_rules_field(
    client: httpx2.AsyncClient, alice: Person, rules: str, says: str
) -> None:
    token = await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    answer = await control(
        client, "planner_settings", token, {"endpoint_id": endpoint_id, "rules": rules}
    )
    assert answer.status_code == 422
    beside = [m for f, m in field_errors(answer.text).items() if f.endswith("-f-rules")]
    assert len(beside) == 1
    assert says in beside[0]
    stored = await client.get(f"/api/v1/endpoints/{endpoint_id}/planner", headers=alice.headers)
    assert stored.json()["settings"]["rules"] == []


async def test_channels_rules_and_incidents_are_managed_on_the_alerts_page(
    client: httpx2.AsyncClient, services: Services, alice: Person
) -> None:
    token = await sign_in(client, alice)
    added = await control(
        client,
        "create_channel",
        token,
        {"name": "ops-hook", "kind": "webhook", "url": "https://hooks.example.com/ops"},
    )
    assert added.status_code == 200, added.text
    bad = await control(
        client, "create_rule", token, {"name": "r", "kind": "no_run", "failures": "0"}
    )
    assert "failures" in " ".join(field_errors(bad.text))
    rule = await control(
        client, "create_rule", token, {"name": "down", "kind": "consecutive_failures"}
    )
    assert rule.status_code == 200, rule.text
    page = (await client.get("/alerts")).text
    assert "ops-hook" in page
    assert "consecutive_failures" in page
    channel_id = re.search(r'data-channel="([^"]+)"', page)
    assert channel_id
    sent = await control(client, "test_channel", token, {"channel_id": channel_id.group(1)})
    assert sent.status_code == 200
    assert services.notify is not None
    (stored,) = await services.notify.list_channels(alice.tenant_id)
    assert stored.url == "https://hooks.example.com/ops"


async def test_queued_one_shots_are_listed_and_each_is_cancelled_from_its_own_button(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    for days in (7, 14):
        answer = await control(
            client,
            "one_shot",
            token,
            {"endpoint_id": endpoint_id, "delay_seconds": str(days * 86400), "reason": f"d{days}"},
        )
        assert answer.status_code == 200, answer.text
    overview = (await client.get("/")).text
    assert "and 1 more queued" in overview
    week, fortnight = [
        s["id"] for s in (await endpoint_state(client, alice, endpoint_id))["hints"]["one_shots"]
    ]
    page = (await client.get(f"/endpoints/{endpoint_id}?part=live")).text
    for one_shot_id in (week, fortnight):
        assert f'data-one-shot="{one_shot_id}"' in page
        assert f'name="one_shot_id" value="{one_shot_id}"' in page
    answer = await control(
        client, "cancel_one_shot", token, {"endpoint_id": endpoint_id, "one_shot_id": week}
    )
    assert answer.status_code == 200
    assert answer.headers["hx-trigger"] == "cadenza:changed"
    page = (await client.get(f"/endpoints/{endpoint_id}?part=live")).text
    assert f'data-one-shot="{week}"' not in page
    assert f'data-one-shot="{fortnight}"' in page
    again = await control(
        client, "cancel_one_shot", token, {"endpoint_id": endpoint_id, "one_shot_id": week}
    )
    assert again.status_code == 404
    assert [
        s["id"] for s in (await endpoint_state(client, alice, endpoint_id))["hints"]["one_shots"]
    ] == [fortnight]
    assert "cancel_one_shot" in await audit_actions(client, alice, endpoint_id)
