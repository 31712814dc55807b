"""No secret is shown in the admin (docs/configuration.md): API token keys appear once, when
created."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from releases.services.api_tokens import token_digest

pytestmark = pytest.mark.django_db


@pytest.fixture
def token():
    return Token.objects.create(user=User.objects.create_user("api-reader"))


def test_the_token_list_and_pages_never_show_a_key(admin_client, token):
    pages = [
        "/admin/",
        "/admin/releases/apitoken/",
        f"/admin/releases/apitoken/{token.user.pk}/change/",
        f"/admin/releases/apitoken/{token.user.pk}/delete/",
    ]
    for url in pages:
        page = admin_client.get(url)
        assert page.status_code == 200, url
        assert token.secret not in page.content.decode(), url
        assert token.key not in page.content.decode(), url  # nor its digest
    assert admin_client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_a_new_token_is_shown_once_and_not_kept_in_the_admin_history(admin_client):
    user = User.objects.create_user("new-api-reader")
    answer = admin_client.post("/admin/releases/apitoken/add/", {"user": user.pk})
    key = answer.context["new_key"]
    assert Token.objects.get(user=user).key == token_digest(key)  # the row holds its digest
    assert answer.status_code == 200 and key in answer.content.decode()  # this answer only
    assert "no-store" in answer["Cache-Control"]
    # Not carried to a later page in a message: Django keeps messages in a cookie (signed,
    # readable) until they are shown.
    assert key not in str(answer.cookies) and key not in str(admin_client.cookies)
    later = admin_client.get("/admin/releases/apitoken/").content.decode()
    assert key not in later
    assert key not in admin_client.get("/admin/releases/apitoken/").content.decode()
    assert key not in admin_client.get("/admin/").content.decode()  # "Recent actions"
