"""/api/docs works offline: every script, style sheet and icon it references is served by us."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.ops.helpers import base_url, dashboard, login, run


def test_api_docs_assets_are_served_locally(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            await login(client, "viewer")
            page = await client.get("/api/docs")
            assert page.status_code == 200
            urls = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', page.text)
            urls += re.findall(r"url: *['\"]([^'\"]+)['\"]", page.text)
            assert urls, page.text
            assert not [u for u in urls if "://" in u or u.startswith("//")], urls
            kinds: dict[str, str] = {}
            for url in urls:
                answer = await client.get(url)
                assert answer.status_code == 200, url
                kinds[url.rsplit(".", 1)[-1]] = answer.headers["content-type"]
            assert "javascript" in kinds["js"] and "text/css" in kinds["css"]
            spec = await client.get("/api/openapi.json")
            assert spec.json()["openapi"].startswith("3.")
    run(scenario)
