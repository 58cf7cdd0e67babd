"""What non-admins see of a channel's YAML: literal secrets masked, placeholders and the
layout (so the line numbers) kept."""

from __future__ import annotations

import yaml

from conduit.ops.yaml_mask import masked

CHANNEL = """\
name: partner  # the partner's feed
destinations:
  - name: api
    type: http
    url: https://bob:hunter2@example.org/in
    token_url: https://auth.example.org/token
    auth: {type: basic, username: conduit, password: "s3cret"}
  - name: other
    auth:
      type: oauth2
      client_secret: ${CLIENT_SECRET}
      token: ${TOKEN:-literal-default}
      private_key: |
        -----BEGIN PRIVATE KEY-----
        abc
    database: postgresql://conduit:${DB_PASSWORD}@db/conduit
    odbc: "Driver=X;Server=db;Uid=conduit;Pwd=odbc-pw;"
    secret_key: sk-literal
after: 1
"""


def test_literal_secrets_are_masked_and_placeholders_kept() -> None:
    shown = masked(CHANNEL)
    for secret in ("hunter2", "s3cret", "literal-default", "BEGIN PRIVATE KEY", "abc",
                   "odbc-pw", "sk-literal"):
        assert secret not in shown
    for kept in ("client_secret: ${CLIENT_SECRET}", "conduit:${DB_PASSWORD}@db",
                 "token_url: https://auth.example.org/token", "username: conduit",
                 "# the partner's feed", "bob:***@example.org", "Uid=conduit;Pwd=***;"):
        assert kept in shown
    assert shown.count("\n") == CHANNEL.count("\n")
    assert shown.splitlines()[-1] == "after: 1"
    data = yaml.safe_load(shown)  # still YAML
    assert data["destinations"][0]["auth"]["password"] == "***"


def test_a_file_that_is_not_yaml_is_masked_line_by_line() -> None:
    shown = masked("name: x\n  password: hunter2\n  token: ${T}\n: [broken\n")
    assert "hunter2" not in shown and "token: ${T}" in shown
