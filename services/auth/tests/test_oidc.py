"""External sign-in's pure rules (the flows themselves run against a real provider in
tests/e2e/test_oidc_through_gateway.py)."""

import pytest
from auth_service.config import OidcProvider, Settings
from auth_service.oidc.service import _username_base, safe_next
from pydantic import ValidationError


@pytest.mark.parametrize("value, expected", [
    ("/settings?tab=1", "/settings?tab=1"), ("/", "/"), (None, ""), ("", ""),
    ("//evil.example/x", ""), ("https://evil.example/", ""), ("/\\evil.example", ""), ("/a\nb", ""),
    ("javascript:alert(1)", ""),
])
def test_next_is_a_path_on_this_site_only(value, expected):
    assert safe_next(value) == expected


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], [], ["RS256", "HS512"]])
def test_symmetric_or_no_algorithms_are_refused_in_configuration(algorithms):
    with pytest.raises(ValidationError):
        OidcProvider(issuer="https://idp.example", client_id="c", client_secret="s", display_name="IdP",
                     algorithms=algorithms)


def test_providers_come_from_one_json_variable(monkeypatch):
    monkeypatch.setenv("OIDC_PROVIDERS", '{"clerk": {"issuer": "https://clerk.example", "client_id": "c", '
                                         '"client_secret": "s3cret", "display_name": "Clerk"}}')
    clerk = Settings().oidc_providers["clerk"]
    assert clerk.issuer == "https://clerk.example" and clerk.algorithms == ["RS256"]
    assert "s3cret" not in repr(clerk)
    monkeypatch.setenv("OIDC_PROVIDERS", '{"Bad Name!": {"issuer": "x", "client_id": "c", '
                                         '"client_secret": "s", "display_name": "X"}}')
    with pytest.raises(ValidationError):
        Settings()


def test_usernames_from_claims_fit_the_username_rules():
    assert _username_base({"preferred_username": "Ada.Lovelace"}) == "ada_lovelace"
    assert _username_base({"email": "x@example.com", "name": "Grace Hopper"}) == "grace_hopper"
    assert _username_base({}) == "user"


def test_a_webhook_secret_that_is_not_base64_is_refused_in_configuration():
    with pytest.raises(ValidationError):
        OidcProvider(issuer="https://idp.example", client_id="c", client_secret="s", display_name="IdP",
                     webhook_secret="whsec_not base64!")
    assert OidcProvider(issuer="https://idp.example", client_id="c", client_secret="s", display_name="IdP",
                        webhook_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").webhook_secret
