"""The CLI's client for a running engine: its management API over HTTP with a bearer token
(``--url``/``--token`` or ``$CONDUIT_URL``/``$CONDUIT_TOKEN``; tokens from
``conduit users token NAME``). Every failure is one line: nothing listening, a refused token, a
missing role, a channel that is not there."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from conduit.cli.stores import Failure, settings_for

F = TypeVar("F", bound=Callable[..., Any])


def remote_options(function: F) -> F:
    """``--url``, ``--token`` and ``--config`` (whose dashboard address is the default URL)."""
    for option in reversed([
        click.option("--url", envvar="CONDUIT_URL",
                     help="The engine's dashboard address (default: $CONDUIT_URL, else the "
                          "settings' dashboard host and port)."),
        click.option("--token", envvar="CONDUIT_TOKEN",
                     help="API token (default: $CONDUIT_TOKEN; make one with "
                          "`conduit users token NAME`)."),
        click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
                     help="Settings file (default: $CONDUIT_CONFIG or the nearest "
                          "conduit.yaml)."),
    ]):
        function = option(function)
    return function


def sub_client(ctx: click.Context, url: str | None, token: str | None,
               config_file: Path | None) -> Client:
    """A sub-command's client: its own ``--url``/``--token``/``--config``, else its group's."""
    group_url, group_token, group_config = ctx.obj or (None, None, None)
    return Client(url or group_url, token or group_token, config_file or group_config)


def default_url(config_file: Path | None) -> str:
    """Where the settings say the dashboard listens (a wildcard host means this machine)."""
    dashboard = settings_for(config_file).dashboard
    host = "127.0.0.1" if dashboard.host in ("0.0.0.0", "::", "") else dashboard.host
    return f"{'https' if dashboard.tls else 'http'}://{host}:{dashboard.port}"


class Client:
    """Calls ``/api/...`` of one engine; answers are JSON, failures :class:`Failure`."""

    def __init__(self, url: str | None, token: str | None, config_file: Path | None = None,
                 timeout: float = 30.0) -> None:
        self.url = (url or default_url(config_file)).rstrip("/")
        if not token:
            raise Failure("no API token: give --token or set CONDUIT_TOKEN (make one with "
                          "`conduit users token NAME` where the engine's store is)")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        verify: bool | str = os.environ.get("CONDUIT_CA_FILE") or True
        try:
            response = httpx.request(method, f"{self.url}/api{path}", timeout=self.timeout,
                                     headers={"Authorization": f"Bearer {self.token}"},
                                     verify=verify, **kwargs)
        except httpx.ConnectError as exc:
            raise Failure(f"cannot reach the engine at {self.url}: {_reason(exc)} (is "
                          "`conduit run` up? --url or CONDUIT_URL)") from None
        except httpx.TimeoutException:
            raise Failure(f"the engine at {self.url} did not answer in {self.timeout:g}s") \
                from None
        except httpx.HTTPError as exc:
            raise Failure(f"{self.url}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 401:
            raise Failure(f"the engine at {self.url} refused the token (401): make a new one "
                          "with `conduit users token NAME`")
        if response.is_error:
            raise Failure(f"{method} {path}: {response.status_code} {_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise Failure(f"{self.url} answered {path} with something other than JSON: is it "
                          "a Conduit dashboard?") from None


def _reason(exc: Exception) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        errno = getattr(cause, "errno", None)
        if errno:
            return os.strerror(errno).lower()
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.reason_phrase
    if isinstance(detail, dict) and "problems" in detail:
        return "; ".join(detail["problems"])
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, d.get('loc') or []))}: {d.get('msg')}"
                         for d in detail if isinstance(d, dict))
    return str(detail)


def print_json(value: Any) -> None:
    import json

    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
