"""POST /v1/devices/{id}/commands: an admin tells one device to do something now."""

from __future__ import annotations

import anyio
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from stb_origin import eventlog
from stb_origin.accounts import devices
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.errors import NotFound
from stb_origin.accounts.http import admin_claims, run_as_caller
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import json_response, path_id, services_of
from stb_origin.web.jsonbody import read_object

# resync: reload the catalog, guide and entitlements; sign_out: forget the tokens.
COMMANDS = ("resync", "sign_out")


async def post_command(request: Request) -> Response:
    claims = await admin_claims(request)
    device_id = path_id(request, "device_id", "device")
    body = await read_object(request, {"command"})
    command = body.text("command")
    if command not in COMMANDS:
        raise ApiError(400, "bad_request", f"command: one of {', '.join(COMMANDS)}")

    def work(session: Session, _caller: Caller) -> str:
        device = devices.get_device(session, device_id)
        if device is None:
            raise NotFound("no such device")
        return device.account_id

    account_id = await run_as_caller(request, claims, work)
    offset = await anyio.to_thread.run_sync(eventlog.send_command, services_of(request).redis,
                                            device_id, account_id, command)
    if offset is None:
        raise ApiError(503, "unavailable", "the command could not be sent; retry shortly",
                       {"Retry-After": "5", **NO_STORE})
    return json_response({"device": device_id, "command": command, "offset": offset}, 202)
