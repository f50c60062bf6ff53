"""The fake's OpenID Connect issuer, checked by implementations that are not the fake's.

authlib runs the authorization-code flow (PKCE, nonce) from the discovery
document and joserfc validates the ID token against the JWK Set; google-auth's
``verify_token`` checks minted tokens against the PEM certificates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from authlib.deprecate import AuthlibDeprecationWarning  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.transport.requests import Request
from google.oauth2 import id_token as google_id_token
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from tests.support.fake_google.mailbox import make_email
from tests.support.fake_google.oidc import subject_of
from tests.support.fake_google.server import FakeGoogle

with warnings.catch_warnings():  # authlib would rather have httpx2; httpx is what we have
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.common.security import generate_token  # type: ignore[import-untyped]
    from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]

CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"
REDIRECT_URI = "http://127.0.0.1:1/callback"  # never visited: the code is read off the redirect
ALICE, BOB = "alice@example.com", "bob@example.com"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def google_request() -> Iterator[Request]:
    with requests.Session() as session:
        session.trust_env = False
        yield Request(session)


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def sign_in(
    http: httpx.Client, fake: FakeGoogle, *, code_verifier: str | None = None, **params: str
) -> dict[str, Any]:
    """Consent with ``params`` and exchange the code; the token endpoint's answer."""
    query = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code"}
    consent = http.get(fake.url + "/o/oauth2/auth", params={**query, **params})
    assert consent.status_code == 302, consent.text
    code = httpx.URL(consent.headers["location"]).params["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    form.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    answer: dict[str, Any] = http.post(fake.token_uri, data=form).json()
    return answer


def test_discovery_document_points_at_the_fake(http: httpx.Client, fake_google: FakeGoogle) -> None:
    document = http.get(fake_google.url + "/.well-known/openid-configuration").json()

    root = fake_google.url
    assert document["issuer"] == fake_google.oidc_issuer == root
    assert document["authorization_endpoint"] == root + "/o/oauth2/auth"
    assert document["token_endpoint"] == fake_google.token_uri
    assert document["userinfo_endpoint"] == root + "/oauth2/v3/userinfo"
    assert document["jwks_uri"] == root + "/oauth2/v3/certs" == fake_google.jwks_uri
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["subject_types_supported"] == ["public"]
    assert "code" in document["response_types_supported"]
    assert {"openid", "email", "profile"} <= set(document["scopes_supported"])
    assert {"iss", "aud", "sub", "email", "email_verified", "nonce"} <= set(
        document["claims_supported"]
    )
    assert document["code_challenge_methods_supported"] == ["plain", "S256"]
    assert {"authorization_code", "refresh_token"} <= set(document["grant_types_supported"])
    assert "client_secret_basic" in document["token_endpoint_auth_methods_supported"]
    assert fake_google.log[-1].api_method == "oidc.discovery"


def test_jwks_and_pem_certs_publish_the_same_key(
    http: httpx.Client, fake_google: FakeGoogle
) -> None:
    (jwk,) = http.get(fake_google.jwks_uri).json()["keys"]
    certs = http.get(fake_google.certs_url).json()

    assert {k: jwk[k] for k in ("kty", "alg", "use")} == {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
    }
    assert list(certs) == [jwk["kid"]]
    public_key = x509.load_pem_x509_certificate(certs[jwk["kid"]].encode()).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    imported = KeySet.import_key_set({"keys": [jwk]}).keys[0].public_key
    assert isinstance(imported, rsa.RSAPublicKey)
    assert imported.public_numbers() == public_key.public_numbers()
    assert [c.api_method for c in fake_google.log] == ["oidc.jwks", "oidc.certs"]


def test_authlib_code_flow_with_pkce_and_nonce(http: httpx.Client, fake_google: FakeGoogle) -> None:
    fake_google.account_names[BOB] = "Bob Example"
    metadata = http.get(fake_google.url + "/.well-known/openid-configuration").json()
    client = OAuth2Client(
        CLIENT_ID,
        CLIENT_SECRET,
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        trust_env=False,
    )
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, login_hint=BOB
    )

    consent = http.get(url)  # the browser's visit: the consent screen redirects at once
    assert consent.is_redirect and consent.next_request is not None
    assert str(consent.next_request.url).startswith(REDIRECT_URI)
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=str(consent.next_request.url),
        state=state,
        code_verifier=verifier,
    )

    keys = KeySet.import_key_set(http.get(metadata["jwks_uri"]).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert decoded.header["kid"] == keys.keys[0].kid
    JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": CLIENT_ID},
        azp={"essential": True, "value": CLIENT_ID},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True, "value": subject_of(BOB)},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(decoded.claims)
    claims = decoded.claims
    assert claims["exp"] - claims["iat"] == 3600
    assert (claims["email"], claims["email_verified"], claims["name"]) == (BOB, True, "Bob Example")
    left_half = hashlib.sha256(token["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(left_half).rstrip(b"=").decode()

    userinfo = client.get(metadata["userinfo_endpoint"]).json()
    assert userinfo == {
        "sub": subject_of(BOB),
        "email": BOB,
        "email_verified": True,
        "name": "Bob Example",
    }
    logged = [(c.api_method, c.status, c.account) for c in fake_google.log]
    assert logged == [
        ("oidc.discovery", 200, None),
        ("oauth2.auth", 302, None),
        ("oauth2.token", 200, None),
        ("oidc.jwks", 200, None),
        ("oidc.userinfo", 200, BOB),
    ]
    assert fake_google.log[1].param("nonce") == nonce


def test_who_signs_in(http: httpx.Client, fake_google: FakeGoogle) -> None:
    def signed_in(**params: str) -> str:
        answer = sign_in(http, fake_google, scope="openid email", **params)
        return str(unverified_claims(answer["id_token"])["email"])

    consent = http.get(fake_google.url + "/o/oauth2/auth", params={"client_id": CLIENT_ID})
    assert consent.status_code == 400  # nobody to sign in as

    fake_google.consent_account = ALICE
    assert signed_in() == ALICE
    assert signed_in(login_hint=BOB) == BOB
    fake_google.sign_in_next("carol@example.com")  # the user picks another account
    assert signed_in(login_hint=BOB) == "carol@example.com"
    assert signed_in(login_hint=BOB) == BOB  # sign_in_next holds for one consent only


def test_id_token_claims_follow_the_scopes(http: httpx.Client, fake_google: FakeGoogle) -> None:
    fake_google.consent_account = ALICE
    fake_google.account_names[ALICE] = "Alice Example"

    assert "id_token" not in sign_in(http, fake_google, scope="email profile")
    bare = unverified_claims(sign_in(http, fake_google, scope="openid")["id_token"])
    assert bare["sub"] == subject_of(ALICE) and bare["aud"] == CLIENT_ID
    assert not {"email", "email_verified", "name", "nonce"} & bare.keys()
    profile = unverified_claims(sign_in(http, fake_google, scope="openid profile")["id_token"])
    assert profile["name"] == "Alice Example" and "email" not in profile


def test_pkce_plain_and_a_wrong_verifier(http: httpx.Client, fake_google: FakeGoogle) -> None:
    fake_google.consent_account = ALICE
    plain = {"scope": "openid", "code_challenge": "v" * 43, "code_challenge_method": "plain"}

    assert "id_token" in sign_in(http, fake_google, **plain, code_verifier="v" * 43)
    refused = sign_in(http, fake_google, **plain, code_verifier="w" * 43)
    assert refused == {"error": "invalid_grant", "error_description": "Invalid code verifier."}


def test_userinfo_needs_a_valid_access_token(http: httpx.Client, fake_google: FakeGoogle) -> None:
    answer = http.get(fake_google.url + "/oauth2/v3/userinfo")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_request"
    assert "WWW-Authenticate" in answer.headers
    token = fake_google.issue_access_token(ALICE, ["openid"])
    answer = http.get(
        fake_google.url + "/oauth2/v3/userinfo", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.json() == {"sub": subject_of(ALICE)}
    assert [(c.api_method, c.status) for c in fake_google.log] == [
        ("oidc.userinfo", 401),
        ("oidc.userinfo", 200),
    ]


def test_google_auth_accepts_a_minted_token(
    fake_google: FakeGoogle, google_request: Request
) -> None:
    fake_google.account_names[ALICE] = "Alice Example"
    token = fake_google.id_token(ALICE, "my-client", nonce="n-1")

    claims = google_id_token.verify_token(
        token, google_request, audience="my-client", certs_url=fake_google.certs_url
    )

    assert claims["iss"] == fake_google.oidc_issuer
    assert (claims["aud"], claims["azp"], claims["sub"]) == (
        "my-client",
        "my-client",
        subject_of(ALICE),
    )
    assert (claims["email"], claims["email_verified"], claims["name"]) == (
        ALICE,
        True,
        "Alice Example",
    )
    assert claims["nonce"] == "n-1" and claims["exp"] - claims["iat"] == 3600
    assert fake_google.log[-1].api_method == "oidc.certs"
    issuer = "https://accounts.google.com"
    assert unverified_claims(fake_google.id_token(ALICE, "c", issuer=issuer))["iss"] == issuer


@pytest.mark.parametrize(
    ("mint", "message"),
    [
        ({"expires_in": -60}, "Token expired"),
        ({"audience": "someone-else"}, "wrong audience"),
        ({"key": "other"}, "Could not verify token signature"),
    ],
    ids=["expired", "wrong-audience", "other-key"],
)
def test_google_auth_rejects(
    fake_google: FakeGoogle, google_request: Request, mint: dict[str, Any], message: str
) -> None:
    token = fake_google.id_token(**{"email": ALICE, "audience": "my-client", **mint})

    with pytest.raises(ValueError, match=message):
        google_id_token.verify_token(
            token, google_request, audience="my-client", certs_url=fake_google.certs_url
        )


def test_joserfc_rejects_the_other_key(http: httpx.Client, fake_google: FakeGoogle) -> None:
    keys = KeySet.import_key_set(http.get(fake_google.jwks_uri).json())
    forged = fake_google.id_token(ALICE, "my-client", key="other")

    assert jwt.decode(fake_google.id_token(ALICE, "my-client"), keys).claims["email"] == ALICE
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, keys, algorithms=["RS256"])


# -- a Gmail add-on's tokens


ADDON_SCOPES = (
    "https://www.googleapis.com/auth/gmail.addons.execute",
    "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
    "https://www.googleapis.com/auth/userinfo.email",
)


def test_an_endpoint_url_is_an_id_tokens_audience(
    fake_google: FakeGoogle, google_request: Request
) -> None:
    """What Google posts to an add-on's HTTP endpoint: an ID token of the add-on's service
    account, issued by Google, for the endpoint's URL."""
    endpoint = "https://crm.example.com/addon/gmail"
    robot = "service-1234@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
    token = fake_google.id_token(robot, endpoint, issuer="https://accounts.google.com")

    claims = google_id_token.verify_token(
        token, google_request, audience=endpoint, certs_url=fake_google.certs_url
    )

    assert (claims["aud"], claims["email"], claims["iss"]) == (
        endpoint,
        robot,
        "https://accounts.google.com",
    )
    with pytest.raises(ValueError, match="wrong audience"):
        google_id_token.verify_token(
            token,
            google_request,
            audience="https://crm.example.com/addon/homepage",
            certs_url=fake_google.certs_url,
        )


def test_a_message_token_opens_its_message_only(
    http: httpx.Client, fake_google: FakeGoogle
) -> None:
    mailbox = fake_google.add_mailbox(ALICE)
    opened = mailbox.add_message(make_email(subject="Open me", to=ALICE))
    other = mailbox.add_message(make_email(subject="Not this one", to=ALICE))
    user_token = fake_google.issue_access_token(ALICE, ADDON_SCOPES)
    message_token = fake_google.issue_message_token(ALICE, opened)

    def get(message_id: str, fmt: str = "metadata", token: str = message_token) -> httpx.Response:
        return http.get(
            f"{fake_google.url}/gmail/v1/users/me/messages/{message_id}",
            params=[("format", fmt), ("metadataHeaders", "From"), ("metadataHeaders", "To")],
            headers={"Authorization": f"Bearer {user_token}", "X-Goog-Gmail-Access-Token": token},
        )

    answer = get(opened)
    assert answer.status_code == 200
    names = [h["name"] for h in answer.json()["payload"]["headers"]]
    assert names == ["From", "To"]
    assert get(other).status_code == 403
    assert get(opened, token="").status_code == 403
    assert get(opened, fmt="full").status_code == 403
    listing = http.get(
        f"{fake_google.url}/gmail/v1/users/me/messages",
        headers={"Authorization": f"Bearer {user_token}"},
    )
    assert listing.status_code == 403
    bob_token = fake_google.issue_message_token(BOB, opened)
    assert get(opened, token=bob_token).status_code == 403
