"""Web Push routes: the server's public key, and browsers subscribing and unsubscribing."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from claudomator.service import Service


class PushKey(BaseModel):
    """The VAPID public key: give it to ``pushManager.subscribe`` as applicationServerKey."""

    public_key: str


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(min_length=1, max_length=255)
    auth: str = Field(min_length=1, max_length=255)


class SubscriptionBody(BaseModel):
    """A browser's PushSubscription, as ``JSON.stringify(subscription)`` gives it."""

    model_config = ConfigDict(extra="ignore")  # e.g. expirationTime

    endpoint: str = Field(min_length=1, max_length=2048)
    keys: SubscriptionKeys


class Subscribed(BaseModel):
    endpoint: str


class UnsubscribeBody(BaseModel):
    endpoint: str = Field(min_length=1, max_length=2048)


def push_routes(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/push", tags=["notifications"])

    @router.get("/key", response_model=PushKey)
    def public_key() -> PushKey:
        """The server's VAPID public key (base64url), generated on first use."""
        return PushKey(public_key=service.push_public_key())

    @router.post("/subscriptions", response_model=Subscribed, status_code=201)
    def subscribe(body: SubscriptionBody) -> Subscribed:
        """Push task events (BLOCKED with its question, READY, COMPLETED, FAILED, TIMED_OUT,
        BUDGET_EXCEEDED) to this browser from now on. Subscribing again replaces the keys."""
        saved = service.subscribe_push(body.endpoint, body.keys.p256dh, body.keys.auth)
        return Subscribed(endpoint=saved.endpoint)

    @router.post("/unsubscribe", status_code=204, response_class=Response)
    def unsubscribe(body: UnsubscribeBody) -> Response:
        """Stop pushing to this endpoint (204 also when it was not subscribed)."""
        service.unsubscribe_push(body.endpoint)
        return Response(status_code=204)

    return router
