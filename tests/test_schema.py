"""The OpenAPI schema validates, the docs page works under the CSP, and fuzzing finds no 5xx."""

import os
import re

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from realtime.chat import services
from tests.factories import RoomFactory, StaffFactory, UserFactory

# Bounded so the suite stays quick; FUZZ_EXAMPLES=500 for a longer hunt.
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@pytest.mark.django_db
def test_the_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(target))
    schema = target.read_text()
    for path in (
        "/api/auth/csrf/",
        "/api/auth/login/",
        "/api/auth/logout/",
        "/api/me/",
        "/api/rooms/",
        "/api/rooms/{slug}/",
        "/api/rooms/{slug}/members/",
        "/api/rooms/{slug}/messages/",
        "/api/rooms/{slug}/read/",
        "/api/notifications/",
        "/api/notifications/read/",
        "/api/announcements/",
        "/api/announcements/{announcement_id}/dismiss/",
        "/api/dashboard/history/",
        "/api/publish/",
        "/api/connections/",
        "/api/connections/{connection_id}/",
    ):
        assert f"  {path}:" in schema, path
    assert "tokenAuth" in schema and "cookieAuth" in schema


@pytest.mark.django_db
def test_the_docs_page_lists_every_operation_and_loads_nothing_from_elsewhere(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    for operation in ("GET /api/rooms/", "POST /api/publish/", "DELETE /api/connections/"):
        method, path = operation.split(" ")
        assert re.search(rf"{method}</span> {re.escape(path)}", html), operation
    assert 'id="schema-Room"' in html
    # Nothing external, nothing inline: the page works under the site's CSP.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag
    assert "<style" not in html
    assert "default-src 'self'" in response["Content-Security-Policy"]


@pytest.fixture
def fuzz_schema(db):
    """The live schema, loaded through the WSGI app, with a world worth poking at."""
    # As Django's test client does: the test's transaction must outlive each
    # request (on PostgreSQL, request_finished would close the connection).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schema_with_world()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def schema_with_world():
    owner = UserFactory(username="owner")
    room = RoomFactory(slug="general", owner=owner)
    RoomFactory(slug="secret", owner=owner, is_private=True)
    services.message_create(room=room, author=owner, text="hello")
    services.notification_create(user=owner, title="hi")
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


def operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_boundary_values_of_every_operation_cause_no_server_error(fuzz_schema):
    """Schemathesis' coverage phase: each field's edges (empty, longest, wrong type, missing)."""
    staff_token = Token.objects.create(user=StaffFactory()).key
    user_token = Token.objects.create(user=UserFactory()).key
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    seen = set()
    for operation in operations(fuzz_schema):
        config = fuzz_schema.config.generation_for(operation=operation)
        cases = fuzz_schema.iter_coverage_cases(
            operation, generation_modes=modes, generation_config=config
        )
        for case in cases:
            if "slug" in (case.path_parameters or {}):
                case.path_parameters["slug"] = "general"
            for token in (staff_token, user_token):
                response = case.call(headers={"Authorization": f"Token {token}"})
                seen.add(response.status_code)
                case.validate_response(response, checks=[not_a_server_error])
    assert {200, 201, 400, 403, 404} <= seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_every_operation_finds_no_server_error(fuzz_schema, mode):
    staff_token = Token.objects.create(user=StaffFactory()).key
    user_token = Token.objects.create(user=UserFactory()).key
    checks = [not_a_server_error]
    if mode is GenerationMode.POSITIVE:
        checks += [status_code_conformance, response_schema_conformance]
    seen = set()
    for operation in operations(fuzz_schema):

        @given(
            case=operation.as_strategy(generation_mode=mode),
            slug=st.sampled_from([None, "general", "secret"]),
            token=st.sampled_from([staff_token, user_token]),
        )
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=os.environ.get("FUZZ_RANDOM") != "1",
            suppress_health_check=list(HealthCheck),
        )
        def poke(case, slug, token):
            # Aim two cases in three at rooms that exist, so the fuzzing gets past the 404.
            if slug is not None and "slug" in (case.path_parameters or {}):
                case.path_parameters["slug"] = slug
            response = case.call(headers={"Authorization": f"Token {token}"})
            seen.add(response.status_code)
            case.validate_response(response, checks=checks)

        try:
            poke()
        except Unsatisfiable:
            # Nothing to negate (e.g. GET /api/me/ takes no input at all).
            assert mode is GenerationMode.NEGATIVE, operation.label
    # The run reached the views, not only the doors.
    assert seen & {200, 201}
    assert seen & {400, 403, 404}
