"""Web Push: VAPID keys, browser subscriptions, and the notifications sent to them.

The server identifies itself to push services with a VAPID key pair (RFC 8292). The private key
comes from ``vapid_private_key`` in the config (PEM text or a path to a PEM file) or is generated
once into ``<data_dir>/vapid_private.pem``; browsers subscribe with its public half (the
``applicationServerKey``). Messages are encrypted for each subscription (RFC 8291, aes128gcm)
by pywebpush. A subscription the push service answers 404 or 410 for is gone and is forgotten.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from claudomator.config import Settings

if TYPE_CHECKING:  # pywebpush and requests are imported when a push is sent (CLI start-up)
    from py_vapid import Vapid02
from claudomator.errors import ConfigError, ValidationError
from claudomator.models import PushSubscription, Task
from claudomator.protocol import parse_question
from claudomator.store.base import Store

logger = logging.getLogger(__name__)

KEY_FILE = "vapid_private.pem"
# The task events people are pushed about (the same as the webhook's).
PUSH_EVENTS = frozenset(
    {
        "task.blocked",
        "task.ready",
        "task.completed",
        "task.failed",
        "task.timed_out",
        "task.budget_exceeded",
    }
)
GONE = frozenset({404, 410})  # the push service no longer knows the subscription
MESSAGE_TTL = 24 * 3600  # seconds a push service keeps a message for an offline device
_BODY_CHARS = 600  # push payloads are small (4 KB after encryption)
_TITLES = {
    "task.blocked": "Needs you",
    "task.ready": "Ready for review",
    "task.completed": "Done",
    "task.failed": "Failed",
    "task.timed_out": "Timed out",
    "task.budget_exceeded": "Over budget",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    """The server's VAPID key pair."""

    private_pem: bytes
    public_key: str  # base64url of the uncompressed P-256 point: the applicationServerKey

    @classmethod
    def from_pem(cls, pem: bytes, origin: str) -> VapidKeys:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{origin}: not a PEM private key without a password") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ConfigError(f"{origin}: a VAPID key must be an EC key on the P-256 curve")
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return cls(private_pem=pem, public_key=_b64url(point))


_KEYS_LOCK = threading.Lock()


def load_keys(settings: Settings) -> VapidKeys:
    """The configured VAPID keys, or those generated once into the data dir (made now if new)."""
    configured = settings.vapid_private_key.strip()
    if configured.startswith("-----BEGIN"):
        return VapidKeys.from_pem(configured.encode("ascii"), "vapid_private_key")
    if configured:
        path = Path(configured).expanduser()
        try:
            return VapidKeys.from_pem(path.read_bytes(), f"vapid_private_key ({path})")
        except OSError as exc:
            raise ConfigError(f"vapid_private_key: cannot read {path}: {exc.strerror}") from exc
    path = settings.data_dir / KEY_FILE
    with _KEYS_LOCK:
        if not path.exists():
            _create_key(path)
        return VapidKeys.from_pem(path.read_bytes(), str(path))


def _create_key(path: Path) -> None:
    """Write a new private key to ``path`` (0600); another process that got there first wins."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(partial, path)  # atomic, and never replaces a key someone else wrote
        logger.info("generated a VAPID key pair in %s", path, extra={"action": "webpush"})
    except FileExistsError:
        pass
    finally:
        partial.unlink()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_subscription(endpoint: str, p256dh: str, auth: str) -> PushSubscription:
    """A subscription from a browser, checked: an https endpoint (http only on this machine),
    a P-256 public key and a 16-byte auth secret, both base64url."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http"):
        raise ValidationError("endpoint: must be an https URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValidationError("endpoint: must be an https URL (http only for 127.0.0.1)")
    if parts.username or parts.password:
        raise ValidationError("endpoint: must not carry credentials")
    try:
        point = _unb64url(p256dh)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError("keys.p256dh: not base64url") from exc
    if len(point) != 65 or point[0] != 4:
        raise ValidationError("keys.p256dh: not an uncompressed P-256 public key (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise ValidationError("keys.p256dh: not a point on the P-256 curve") from exc
    try:
        secret = _unb64url(auth)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError("keys.auth: not base64url") from exc
    if len(secret) != 16:
        raise ValidationError("keys.auth: must be 16 bytes")
    return PushSubscription(endpoint=endpoint, p256dh=p256dh, auth=auth)


def message(event: str, task: Task, delivered: str = "") -> dict[str, str]:
    """What a browser shows for ``event``: title, body (ending with ``delivered``, where the
    work went), and the page to open."""
    title = f"{_TITLES.get(event, event)}: {task.name}"
    if event == "task.blocked":
        body = parse_question(task.question).text if task.question else ""
        body = body or "The agent has a question."
    else:
        body = task.summary or task.state.value.replace("_", " ").lower()
    where = f"Delivered: {delivered}"[: _BODY_CHARS // 2] if delivered else ""
    room = _BODY_CHARS - (len(where) + 1 if where else 0)
    if len(body) > room:
        body = body[: room - 1] + "…"
    body = f"{body}\n{where}" if where else body
    return {
        "title": title[:200],
        "body": body,
        "url": f"/tasks/{task.id}",
        "task_id": task.id,
        "state": task.state.value,
        "event": event,
    }


class WebPush:
    """Sends task events to every subscribed browser."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        timeout: float = 10.0,
        retry_delays: tuple[float, ...] = (2.0, 10.0, 30.0),
    ) -> None:
        self.settings = settings
        self.store = store
        self.timeout = timeout
        self.retry_delays = retry_delays
        self._keys: VapidKeys | None = None
        self._signer: Vapid02 | None = None

    def wants(self, event: str) -> bool:
        return event in PUSH_EVENTS

    @property
    def keys(self) -> VapidKeys:
        if self._keys is None:
            self._keys = load_keys(self.settings)
        return self._keys

    @property
    def signer(self) -> Vapid02:
        """The VAPID signer, parsed once from the private key."""
        if self._signer is None:
            from py_vapid import Vapid02

            self._signer = Vapid02.from_pem(self.keys.private_pem)
        return self._signer

    async def send(self, event: str, task: Task, delivered: str = "") -> int:
        """Push ``event`` to every subscription, retrying each with backoff; how many took it."""
        subscriptions = await asyncio.to_thread(self.store.push_subscriptions)
        if not subscriptions:
            return 0
        data = json.dumps(message(event, task, delivered), ensure_ascii=False)
        results = await asyncio.gather(*(self._deliver(s, data, event) for s in subscriptions))
        return sum(results)

    async def _deliver(self, subscription: PushSubscription, data: str, event: str) -> bool:
        for delay in (0.0, *self.retry_delays):
            if delay:
                await asyncio.sleep(delay)
            status = await asyncio.to_thread(self._send_once, subscription, data)
            if status is not None and status < 300:
                return True
            if status in GONE:
                await asyncio.to_thread(self.store.delete_push_subscription, subscription.endpoint)
                logger.info(
                    "push subscription at %s is gone (%d); removed",
                    urlsplit(subscription.endpoint).hostname,
                    status,
                    extra={"action": "webpush"},
                )
                return False
            if status is not None and status < 500 and status != 429:
                break  # refused for good (bad key, payload too large, ...): no retry helps
        logger.warning(
            "gave up pushing %s to %s",
            event,
            urlsplit(subscription.endpoint).hostname,
            extra={"action": "webpush"},
        )
        return False

    def _send_once(self, subscription: PushSubscription, data: str) -> int | None:
        """One attempt; the push service's status, or None when it could not be reached."""
        import requests
        from pywebpush import WebPushException, webpush

        info: dict[str, Any] = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        try:
            response = webpush(
                info,
                data,
                vapid_private_key=self.signer,
                vapid_claims={"sub": self.settings.vapid_subject},
                timeout=self.timeout,
                ttl=MESSAGE_TTL,
            )
        except WebPushException as exc:
            if exc.response is None:
                return None
            return int(exc.response.status_code)
        except requests.RequestException as exc:
            logger.info(
                "push to %s failed: %s",
                urlsplit(subscription.endpoint).hostname,
                type(exc).__name__,
                extra={"action": "webpush"},
            )
            return None
        assert isinstance(response, requests.Response)
        return response.status_code
