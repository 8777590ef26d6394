"""The service's Web Push subscriptions: the VAPID public key, subscribing and unsubscribing."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from claudomator.models import PushSubscription
from claudomator.service.core import ServiceCore

logger = logging.getLogger(__name__)


class PushSubscriptions(ServiceCore):
    """Browsers' Web Push subscriptions."""

    def push_public_key(self) -> str:
        """The VAPID public key browsers subscribe with (generated on first use)."""
        from claudomator import webpush  # cryptography: only for Web Push

        return webpush.load_keys(self.settings).public_key

    def subscribe_push(self, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
        """Remember a browser's Web Push subscription (validated)."""
        from claudomator import webpush

        subscription = webpush.validate_subscription(endpoint, p256dh, auth)
        self.store.save_push_subscription(subscription)
        logger.info(
            "push subscription added for %s",
            urlsplit(endpoint).hostname,
            extra={"action": "webpush"},
        )
        return subscription

    def unsubscribe_push(self, endpoint: str) -> bool:
        """Forget a subscription; False if it was not known."""
        return self.store.delete_push_subscription(endpoint)
