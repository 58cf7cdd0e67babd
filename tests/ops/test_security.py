"""Login, sessions, CSRF, roles, rate limits, tokens and the access audit, over real HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fhir.resources.R4B.bundle import Bundle  # R4B: AuditEvent as in R4

from tests.ops.helpers import PASSWORD, adt, base_url, dashboard, login, run
from tests.support import mllp_exchange, source_port, wait_for


def test_nothing_but_health_is_open_without_login(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, metrics_loopback=False) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"] == {"store": True,
                                                                           "bus": True}
            for path in ("/api/channels", "/api/messages", "/api/messages/1", "/metrics",
                         "/api/docs", "/api/openapi.json", "/api/audit", "/api/users",
                         "/api/stats", "/api/health", "/api/deadletters", "/api/breakers"):
                answer = await client.get(path)
                assert answer.status_code == 401, path
            page = await client.get("/messages?status=ERROR", headers={"Accept": "text/html"})
            assert page.status_code == 303
            assert page.headers["location"] == "/login?next=/messages%3Fstatus%3DERROR"
            assert (await client.post("/api/channels/adt/stop")).status_code == 401
            login_page = await client.get("/login")
            assert login_page.status_code == 200
            assert "SameSite=strict" in login_page.headers["set-cookie"]
            assert login_page.headers["content-security-policy"].startswith("default-src 'self'")

    run(scenario)


def test_login_session_csrf_and_logout(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            form = await client.get("/login")
            assert "csrf_token" in form.text
            # the login form itself is protected against cross-site posts
            forged = await client.post("/login", data={"username": "admin",
                                                       "password": PASSWORD,
                                                       "csrf_token": "forged"})
            assert forged.status_code == 403
            csrf = await login(client, "operator")
            cookie = client.cookies.get("conduit_session")
            assert cookie
            # a session may not change anything without its CSRF token
            refused = await client.post("/api/channels/adt/pause")
            assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
            wrong = await client.post("/api/channels/adt/pause",
                                      headers={"X-CSRF-Token": "x" + csrf})
            assert wrong.status_code == 403
            ok = await client.post("/api/channels/adt/pause", headers={"X-CSRF-Token": csrf})
            assert ok.json() == {"name": "adt", "state": "paused"}
            # forms carry it as a field
            started = await client.post("/channels/adt/start", data={"csrf_token": csrf},
                                        headers={"Referer": base_url(engine) + "/channels/adt"})
            assert started.status_code == 303 and started.headers["location"] == "/channels/adt"
            assert engine.control.state("adt") == "started"
            out = await client.post("/logout", data={"csrf_token": csrf})
            assert out.status_code == 303
            await asyncio.sleep(0)
        async with dashboard(tmp_path / "again") as engine2, httpx.AsyncClient(
                base_url=base_url(engine2)) as other:
            other.cookies.set("conduit_session", cookie)
            assert (await other.get("/api/me")).status_code == 401

    run(scenario)


def test_logout_ends_the_session_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            csrf = await login(client, "viewer")
            cookie = client.cookies.get("conduit_session")
            assert (await client.post("/logout", data={"csrf_token": csrf})).status_code == 303
            client.cookies.set("conduit_session", cookie or "")
            web = engine.service("dashboard").app.state.web
            web.users._forget()
            assert (await client.get("/api/me")).status_code == 401

    run(scenario)


def test_failed_logins_are_rate_limited_and_audited(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, login_attempts=3) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            form = await client.get("/login")
            token = client.cookies.get("conduit_login")
            codes = []
            for _ in range(4):
                answer = await client.post("/login", data={
                    "username": "admin", "password": "wrong password", "csrf_token": token})
                codes.append(answer.status_code)
            assert codes == [401, 401, 401, 429]
            assert int(answer.headers["retry-after"]) > 0
            # even the right password waits now
            right = await client.post("/login", data={"username": "admin", "password": PASSWORD,
                                                      "csrf_token": token})
            assert right.status_code == 429
            assert form.status_code == 200
            web = engine.service("dashboard").app.state.web
            failed = web.audit.list(action="login-failed")
            assert len(failed) == 3 and failed[0]["remote"] == "127.0.0.1"

    run(scenario)


def test_roles_bodies_audit_and_fhir_export(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            port = source_port(engine, "adt")
            await asyncio.to_thread(mllp_exchange, port, [adt("M1", "PAT77")])
            await wait_for(lambda: engine.store.counts().get("adt", {}).get("SENT") == 1)
            message_id = engine.store.search()[0].id
            url = base_url(engine)
            async with httpx.AsyncClient(base_url=url) as viewer, \
                    httpx.AsyncClient(base_url=url) as operator, \
                    httpx.AsyncClient(base_url=url) as admin:
                viewer_csrf = await login(viewer, "viewer")
                operator_csrf = await login(operator, "operator")
                await login(admin, "admin")

                # viewer: counts and states, metadata without bodies or patient ids
                channels = (await viewer.get("/api/channels")).json()
                assert channels[0]["counts"]["sent"] == 1 and channels[0]["state"] == "started"
                seen = (await viewer.get(f"/api/messages/{message_id}")).json()
                assert "raw" not in seen and seen["patient_id"] is None
                assert "content" not in seen["deliveries"][0]
                listed = (await viewer.get("/api/messages")).json()["items"]
                assert listed[0]["patient_id"] is None and listed[0]["control_id"] == "M1"
                assert (await viewer.get("/api/messages?patient=PAT77")).status_code == 403
                assert (await viewer.get("/api/messages?q=familyname")).status_code == 403
                page = await viewer.get(f"/messages/{message_id}")
                assert "FAMILYNAME" not in page.text and "operators only" in page.text
                assert (await viewer.post(f"/api/messages/{message_id}/reprocess",
                                          headers={"X-CSRF-Token": viewer_csrf})
                        ).status_code == 403
                assert (await viewer.post("/api/channels/adt/stop",
                                          headers={"X-CSRF-Token": viewer_csrf})
                        ).status_code == 403
                assert (await viewer.get("/api/audit")).status_code == 403
                assert (await viewer.get("/export")).status_code in (401, 403, 404)

                # operator: bodies, each view audited; no user management or deployment
                full = (await operator.get(f"/api/messages/{message_id}")).json()
                assert "FAMILYNAME^GIVEN" in full["raw"] and full["patient_id"] == "PAT77"
                assert full["deliveries"][0]["content"].startswith("MSH|")
                page = await operator.get(f"/messages/{message_id}",
                                          headers={"X-Request-Id": "req-42"})
                assert "Patient Identifier List" in page.text and "FAMILYNAME" in page.text
                assert page.headers["x-request-id"] == "req-42"
                assert page.headers["cache-control"] == "no-store"
                assert (await operator.get("/api/users")).status_code == 403
                assert (await operator.post("/api/channels/adt/redeploy",
                                            headers={"X-CSRF-Token": operator_csrf})
                        ).status_code == 403

                # admin: the audit shows who saw which message from where, also as FHIR
                audit = (await admin.get(f"/api/audit?message_id={message_id}")).json()["items"]
                views = [a for a in audit if a["action"] == "view"]
                assert [(a["username"], a["remote"], a["detail"]) for a in views] == [
                    ("operator", "127.0.0.1", "dashboard"), ("operator", "127.0.0.1", "api")]
                bundle = (await admin.get("/api/audit/fhir?action=view")).json()
                parsed = Bundle.model_validate(bundle)
                assert parsed.total == 2
                event = bundle["entry"][0]["resource"]
                assert event["resourceType"] == "AuditEvent"
                assert event["entity"][0]["what"]["identifier"]["value"] == str(message_id)
                assert event["agent"][0]["who"]["display"] == "operator"
                assert event["agent"][0]["network"]["address"] == "127.0.0.1"
                audit_page = await admin.get("/admin/audit")
                assert "view" in audit_page.text and audit_page.status_code == 200

    run(scenario)


def test_api_tokens_need_no_csrf_and_users_are_managed_by_admins(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            web = engine.service("dashboard").app.state.web
            token = web.users.create_api_token("admin", "ci")
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base_url(engine), headers=headers) as api:
                assert (await api.get("/api/me")).json()["role"] == "admin"
                made = await api.post("/api/users", json={"name": "nurse", "password": "short",
                                                          "role": "viewer"})
                assert made.status_code == 422
                made = await api.post("/api/users", json={
                    "name": "nurse", "password": "long enough", "role": "operator"})
                assert made.status_code == 201
                names = [u["name"] for u in (await api.get("/api/users")).json()]
                assert "nurse" in names
                assert (await api.patch("/api/users/nurse", json={"role": "viewer"})
                        ).status_code == 200
                assert (await api.delete("/api/users/admin")).status_code == 409
                assert (await api.delete("/api/users/nurse")).status_code == 200
                assert (await api.get("/api/openapi.json")).json()["info"]["title"] \
                    == "Conduit management API"
                assert "swagger" in (await api.get("/api/docs")).text.lower()
            async with httpx.AsyncClient(base_url=base_url(engine), headers={
                    "Authorization": "Bearer cdt_wrong"}) as wrong:
                assert (await wrong.get("/api/me")).status_code == 401

    run(scenario)
