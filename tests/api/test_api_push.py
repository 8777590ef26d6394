"""Web Push: VAPID keys, subscriptions over the API, and encrypted pushes to a local endpoint.

The push service is a real HTTP server on 127.0.0.1 (the browser vendors' services are out of
reach); each test subscription has its own P-256 key and auth secret, so the test decrypts what
the server pushed exactly as a browser would.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from test_api_tasks import Served

from claudomator.config import Settings
from claudomator.errors import ConfigError
from claudomator.models import Task, TaskState
from claudomator.notify import Notifier
from claudomator.service import Service
from claudomator.store import Store
from claudomator.webpush import KEY_FILE, WebPush, load_keys
from fakes.push import Browser, b64url
from fakes.receiver import WebhookReceiver


def verified_jwt(token: str, public_key: str) -> dict[str, Any]:
    """The claims of an ES256 JWT after checking its signature with ``public_key``."""
    head, body, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    point = base64.urlsafe_b64decode(public_key + "==")
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    assert json.loads(base64.urlsafe_b64decode(head + "=="))["alg"] == "ES256"
    return dict(json.loads(base64.urlsafe_b64decode(body + "==")))


def test_the_vapid_key_is_generated_once_into_the_data_dir(settings: Settings) -> None:
    first = load_keys(settings)
    path = settings.data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(settings) == first
    point = base64.urlsafe_b64decode(first.public_key + "==")
    assert len(point) == 65
    assert point[0] == 4


def test_a_configured_vapid_key_is_used_and_a_bad_one_named(
    settings: Settings, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "vapid.pem"
    path.write_bytes(pem)
    from_path = load_keys(settings.model_copy(update={"vapid_private_key": str(path)}))
    inline = load_keys(settings.model_copy(update={"vapid_private_key": pem.decode()}))
    assert from_path.public_key == inline.public_key
    assert not (settings.data_dir / KEY_FILE).exists()
    rsa_like = tmp_path / "junk.pem"
    rsa_like.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=r"junk\.pem"):
        load_keys(settings.model_copy(update={"vapid_private_key": str(rsa_like)}))
    with pytest.raises(ConfigError, match="cannot read"):
        load_keys(settings.model_copy(update={"vapid_private_key": str(tmp_path / "missing")}))


def test_subscribe_validate_and_unsubscribe(settings: Settings, store: Store) -> None:
    browser = Browser("http://127.0.0.1:9/push/one")
    with Served(settings, store) as served, httpx.Client(base_url=served.url) as client:
        key = client.get("/api/push/key")
        assert key.status_code == 200
        assert key.json()["public_key"] == load_keys(settings).public_key
        created = client.post("/api/push/subscriptions", json=browser.subscription())
        assert created.status_code == 201, created.text
        again = client.post("/api/push/subscriptions", json=browser.subscription())
        assert again.status_code == 201
        assert [s.endpoint for s in store.push_subscriptions()] == [browser.endpoint]

        def refused(change: dict[str, Any], field: str) -> None:
            body = {**browser.subscription(), **change}
            response = client.post("/api/push/subscriptions", json=body)
            assert response.status_code == 422, response.text
            assert field in response.json()["error"]

        good_keys = browser.subscription()["keys"]
        refused({"endpoint": "http://push.example.com/x"}, "endpoint")
        refused({"endpoint": "ftp://127.0.0.1/x"}, "endpoint")
        refused({"endpoint": "https://user:pw@push.example.com/x"}, "endpoint")
        refused({"keys": {**good_keys, "p256dh": b64url(b"\x04" + b"\x01" * 64)}}, "p256dh")
        refused({"keys": {**good_keys, "p256dh": "!!!"}}, "p256dh")
        refused({"keys": {**good_keys, "auth": b64url(b"short")}}, "auth")
        refused({"keys": {"auth": good_keys["auth"]}}, "p256dh")
        assert len(store.push_subscriptions()) == 1

        gone = client.post("/api/push/unsubscribe", json={"endpoint": browser.endpoint})
        assert gone.status_code == 204
        assert store.push_subscriptions() == []
        unknown = client.post("/api/push/unsubscribe", json={"endpoint": browser.endpoint})
        assert unknown.status_code == 204


def test_push_routes_need_the_api_token(settings: Settings, store: Store) -> None:
    guarded = settings.model_copy(update={"api_token": "tok"})
    with Served(guarded, store) as served, httpx.Client(base_url=served.url) as client:
        assert client.get("/api/push/key").status_code == 401
        body = Browser("https://push.example.com/x").subscription()
        assert client.post("/api/push/subscriptions", json=body).status_code == 401
        assert store.push_subscriptions() == []


def _blocked_task() -> Task:
    return Task(
        name="fix-login",
        agent={"instructions": "fix"},
        state=TaskState.BLOCKED,
        question="Keep the old endpoint or remove it?",
    )


async def test_events_are_pushed_encrypted_and_gone_subscriptions_removed(
    settings: Settings, store: Store
) -> None:
    with WebhookReceiver(status=201, status_for={"/push/gone": 410, "/push/lost": 404}) as push:
        alive = Browser(f"{push.base_url}/push/alive")
        gone = Browser(f"{push.base_url}/push/gone")
        lost = Browser(f"{push.base_url}/push/lost")
        service = Service(settings, store)
        for browser in (alive, gone, lost):
            sub = browser.subscription()
            service.subscribe_push(browser.endpoint, sub["keys"]["p256dh"], sub["keys"]["auth"])
        pusher = WebPush(settings, store, retry_delays=(0.01,))
        notifier = Notifier("", push=pusher)
        task = _blocked_task()
        notifier.post("task.blocked", task, options=["keep", "remove"])
        notifier.post("task.started", task)  # not an event people are pushed about
        await notifier.drain()

        by_path = {d.path: d for d in push.deliveries}
        assert sorted(by_path) == ["/push/alive", "/push/gone", "/push/lost"]
        shown = alive.read(by_path["/push/alive"])
        assert shown == {
            "title": "Needs you: fix-login",
            "body": "Keep the old endpoint or remove it?",
            "url": f"/tasks/{task.id}",
            "task_id": task.id,
            "state": "BLOCKED",
            "event": "task.blocked",
        }
        headers = by_path["/push/alive"].headers
        assert headers["content-encoding"] == "aes128gcm"
        assert int(headers["ttl"]) == 24 * 3600
        # VAPID: a JWT signed with our key, for the push service's origin, with our contact
        scheme, _, params = headers["authorization"].partition(" ")
        assert scheme == "vapid"
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        assert fields["k"] == load_keys(settings).public_key
        claims = verified_jwt(fields["t"], fields["k"])
        assert claims["aud"] == push.base_url
        assert claims["sub"] == settings.vapid_subject
        assert [s.endpoint for s in store.push_subscriptions()] == [alive.endpoint]

        # a push service that fails for a while is retried; the webhook is unaffected
        push.deliveries.clear()
        push.script = [503]
        push.status_for.clear()
        done = task.model_copy(update={"state": TaskState.COMPLETED, "summary": "Fixed it."})
        notifier.post("task.completed", done)
        await notifier.drain()
        statuses = [d.path for d in push.deliveries]
        assert statuses == ["/push/alive", "/push/alive"]
        assert alive.read(push.deliveries[-1])["body"] == "Fixed it."


async def test_a_push_service_that_is_down_never_blocks_the_caller(
    settings: Settings, store: Store
) -> None:
    browser = Browser("http://127.0.0.1:9/push/down")  # nothing listens on port 9
    sub = browser.subscription()
    Service(settings, store).subscribe_push(
        browser.endpoint, sub["keys"]["p256dh"], sub["keys"]["auth"]
    )
    pusher = WebPush(settings, store, timeout=2, retry_delays=(0.01,))
    assert await pusher.send("task.failed", _blocked_task()) == 0
    assert len(store.push_subscriptions()) == 1  # unreachable is not gone
