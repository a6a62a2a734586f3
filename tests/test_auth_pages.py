"""Sign-in, sign-out and sign-up pages, and the room list page behind them."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import PASSWORD, RoomFactory

pytestmark = pytest.mark.django_db


def assert_no_inline_code(html: str) -> None:
    """
    The CSP allows no inline scripts or styles: every script has a src (or is
    `json_script` data, which browsers never run), no style attributes.
    """
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "<style" not in html
    assert " style=" not in html
    assert "javascript:" not in html


def test_the_sign_in_page_renders_a_form_with_a_csrf_token(client):
    response = client.get("/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert "csrfmiddlewaretoken" in html
    assert "/static/realtime/site.css" in html
    assert_no_inline_code(html)
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_signing_in_with_good_credentials_opens_the_room_list(client, user, room, private_room):
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert user.username in html
    assert 'data-slug="general"' in html
    assert 'data-slug="secret"' in html
    assert_no_inline_code(html)


def test_signing_in_with_a_wrong_password_shows_an_error_and_no_session(client, user):
    response = client.post("/login/", {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_signing_in_without_a_csrf_token_is_refused(user):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_the_room_list_sends_anonymous_visitors_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_the_room_list_hides_private_rooms_from_outsiders(client, other_user, room, private_room):
    client.force_login(other_user)
    html = client.get("/").content.decode()
    assert 'data-slug="general"' in html
    assert "secret" not in html


def test_signing_out_takes_a_post_and_ends_the_session(client, user):
    client.force_login(user)
    assert client.get("/logout/").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_the_header_has_a_sign_out_form_for_the_signed_in_user(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert re.search(r'<form method="post" action="/logout/"', html)


def test_signing_up_creates_an_account_and_signs_in(client):
    response = client.post(
        "/signup/",
        {
            "username": "newcomer",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = get_user_model().objects.get(username="newcomer")
    assert user.check_password("a-long-pass-phrase")
    assert not user.is_staff
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"username": "x", "password1": "a-long-pass-phrase", "password2": "different-phrase"},
            "match",
        ),
        ({"username": "x", "password1": "123", "password2": "123"}, "too short"),
        (
            {
                "username": "TAKEN",
                "password1": "a-long-pass-phrase",
                "password2": "a-long-pass-phrase",
            },
            "already exists",
        ),
    ],
)
def test_signing_up_with_bad_data_shows_the_error_and_creates_nothing(client, data, message):
    RoomFactory(owner__username="taken")
    before = get_user_model().objects.count()
    response = client.get("/signup/")
    assert response.status_code == 200
    assert_no_inline_code(response.content.decode())
    response = client.post("/signup/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert get_user_model().objects.count() == before
