"""POST /graphql: a query in JSON (``{"query", "variables", "operationName"}``), the
caller's bearer token, a JSON answer as GraphQL over HTTP has it.

Refused before anything runs: a missing or bad token (401/403, as everywhere), a
body over 64 KiB (413), a query past the limits (400 with the limit named):
depth, tokens, aliases (strawberry's limiters) and cost (``limits``). Only
queries: there is nothing to change through GraphQL. Introspection is off unless
``STB_GRAPHQL_INTROSPECTION`` is on (``stb-origin dev`` turns it on). An error a
resolver did not mean for the client reads "Unexpected error." and is logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from stb_origin import scopes
from stb_origin.accounts.caller import Caller, UnknownCaller, identify
from stb_origin.accounts.entitlements import Window, read_windows
from stb_origin.accounts.http import claims_with
from stb_origin.db.types import utcnow
from stb_origin.graph.limits import CostLimit
from stb_origin.graph.loaders import Loaders
from stb_origin.graph.schema import Context, Query, QueryError
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.web.bearer import invalid_token
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import services_of
from stb_origin.web.jsonbody import read_object

log = logging.getLogger("stb_origin.graph")

PATH = "/graphql"
MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 20


def _masked(error: GraphQLError) -> bool:
    """Errors of the query itself, and our refusals, are for the client; the rest not."""
    original = error.original_error
    if original is None or isinstance(original, QueryError):
        return False
    log.error("a GraphQL resolver failed", exc_info=original)
    return True


def build_schema(settings: Settings) -> strawberry.Schema:
    # Factories: strawberry makes a fresh extension for each request.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: AddValidationRules([CostLimit]),
        lambda: MaskErrors(should_mask_error=_masked)]
    if not settings.graphql_introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, extensions=extensions)


def _who(services: Services, request_claims: Any) -> tuple[Caller, tuple[Window, ...]]:
    with services.db.session() as session:
        caller = identify(session, request_claims)
        if caller.account_id is None:
            return caller, ()
        return caller, read_windows(session.connection(), caller.account_id)


def routes(settings: Settings) -> list[Route]:
    schema = build_schema(settings)

    async def graphql(request: Request) -> Response:
        claims = await claims_with(request, scopes.PLAYBACK, scopes.ACCOUNT,
                                   scopes.ASSETS_READ, scopes.ADMIN)
        body = await read_object(request, {"query", "variables", "operationName",
                                           "extensions"})
        query = body.text("query")
        variables = body.raw("variables")
        if variables is not None and not isinstance(variables, dict):
            raise ApiError(400, "bad_request", "variables: expected a JSON object")
        operation = body.optional_text("operationName")
        services = services_of(request)
        try:
            caller, windows = await anyio.to_thread.run_sync(_who, services, claims)
        except UnknownCaller as exc:
            raise invalid_token(str(exc)) from None
        context = Context(caller, windows, Loaders(services, utcnow()))
        try:
            result = await schema.execute(query, variables, context, operation_name=operation,
                                          allowed_operation_types={OperationType.QUERY})
        except InvalidOperationTypeError as exc:
            raise ApiError(400, "bad_request", f"only queries: there is no"
                           f" {exc.operation_type.value} here") from None
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        # No data and no error on a path: the request itself was refused (parse,
        # validation, limits) before anything ran.
        refused = result.data is None and not any(e.path for e in result.errors or ())
        status = 400 if refused else 200
        return Response(json.dumps(answer, separators=(",", ":")), status,
                        media_type="application/json", headers=NO_STORE)

    return [Route(PATH, graphql, methods=["POST"])]
