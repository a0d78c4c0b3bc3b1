"""Registering clients: in code, with the CLI, and the box client `stb-origin dev` makes."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from stb_origin.accounts import users
from stb_origin.accounts.errors import AlreadyExists, InvalidValue
from stb_origin.db import Database
from stb_origin.dev import DEV_BOX_CLIENT, DEV_USER, _dev_user, introduce_device_flow
from stb_origin.oauth import clients
from stb_origin.oauth.models import ClientKind, GrantType
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.conftest import require_tools
from tests.support.cli import run_cli


def test_public_client_has_no_secret_and_the_box_grants(db: Database) -> None:
    with db.session() as session:
        client, secret = clients.create_client(session, "Box", ClientKind.PUBLIC,
                                               "playback account")
    assert secret is None and client.secret_hash is None
    assert client.id.startswith("cl-")
    assert client.allows(GrantType.DEVICE_CODE) and client.allows(GrantType.REFRESH_TOKEN)
    assert not client.allows(GrantType.CLIENT_CREDENTIALS)
    assert client.scope_set == {"playback", "account"}


def test_confidential_client_secret_is_hashed_and_checks(db: Database) -> None:
    with db.session() as session:
        client, secret = clients.create_client(session, "Partner", ClientKind.CONFIDENTIAL,
                                               ["assets:read"])
    assert secret is not None and len(secret) >= 43
    assert client.secret_hash is not None and secret not in client.secret_hash
    assert clients.secret_matches(client, secret)
    assert not clients.secret_matches(client, secret + "x")
    assert client.allows(GrantType.CLIENT_CREDENTIALS)
    assert not client.allows(GrantType.DEVICE_CODE)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "internal"}, "kind"),
    ({"name": " "}, "name"),
    ({"scopes": "playback everything"}, "unknown scope"),
    ({"scopes": ""}, "at least one"),
    ({"client_id": "operator"}, "client id"),
    ({"client_id": "0123456789abcdef0123456789abcdef"}, "client id"),
    ({"client_id": "Has Spaces"}, "client id"),
])
def test_bad_clients_are_refused(db: Database, kwargs: dict[str, str], message: str) -> None:
    fields = {"name": "Box", "kind": "public", "scopes": "playback", **kwargs}
    with db.session() as session, pytest.raises(InvalidValue, match=message):
        clients.create_client(session, **fields)


def test_client_ids_are_unique(db: Database) -> None:
    with db.session() as session:
        clients.create_client(session, "Box", "public", "playback", client_id="box")
    with db.session() as session, pytest.raises(AlreadyExists):
        clients.create_client(session, "Box", "public", "playback", client_id="box")


def test_ensure_public_client_is_idempotent(db: Database) -> None:
    for _ in range(2):
        with db.session() as session:
            clients.ensure_public_client(session, "stb-box", "Box", ["playback"])
    with db.session() as session:
        assert [c.id for c in clients.list_clients(session)] == ["stb-box"]


def _cli(settings: Settings, *argv: str) -> int:
    return run_cli(settings, "client", *argv)


def test_cli_adds_clients_and_shows_a_secret_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path)
    assert _cli(settings, "add", "Catalog partner", "--kind", "confidential",
                "--scope", "assets:read") == 0
    out = capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert set(lines) == {"client_id", "client_secret"}
    assert _cli(settings, "add", "Box", "--kind", "public", "--scope", "playback account",
                "--client-id", "stb-box") == 0
    assert capsys.readouterr().out == "client_id: stb-box\n"
    assert _cli(settings, "add", "Box", "--kind", "public", "--scope", "playback",
                "--client-id", "stb-box") == 1
    assert "exists" in capsys.readouterr().err
    assert _cli(settings, "add", "X", "--kind", "public", "--scope", "nope") == 1
    assert "unknown scope" in capsys.readouterr().err
    assert _cli(settings, "list") == 0
    listing = capsys.readouterr().out
    assert "stb-box" in listing and lines["client_id"] in listing
    assert lines["client_secret"] not in listing
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        stored = clients.get_client(session, lines["client_id"])
        assert stored is not None and clients.secret_matches(stored, lines["client_secret"])
    database.dispose()


def test_dev_makes_the_box_client_and_a_user_and_says_how(
        services: Services, api: str, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):  # a second start finds both and prints the same
        introduce_device_flow(services, api, _dev_user(services))
    out = capsys.readouterr().out
    step_one = next(line for line in out.splitlines() if "/oauth/device_authorization" in line)
    require_tools("curl")
    # The printed command works as printed.
    done = subprocess.run(shlex.split(step_one.split(". ", 1)[1]), capture_output=True,
                          timeout=30, check=True)
    assert set(json.loads(done.stdout)) >= {"device_code", "user_code", "verification_uri"}
    password = (services.settings.secrets_dir / "dev-user-password").read_text()
    assert password in out
    with services.db.session() as session:
        client = clients.get_client(session, DEV_BOX_CLIENT)
        assert client is not None and client.kind == ClientKind.PUBLIC
        assert users.authenticate(session, DEV_USER, password) is not None
