"""The ``keel.notify.webhook`` activity: tell people that something waits for them.

Used when an approval escalates. A POST of JSON to the configured URL; 2xx is success, 408/
429/5xx and transport errors are retried by Temporal, other 4xx are not.
"""

from __future__ import annotations

import os
from typing import Any

import httpx2
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import RETRYABLE_STATUS
from keel.contracts import names


class Notification(BaseModel):
    url: str
    payload: dict[str, Any]


def resolve_url(url: str) -> str:
    """``env:NAME`` reads the URL from the worker's environment (keeps secrets such as
    tokens in webhook URLs out of profiles and history)."""
    if not url.startswith("env:"):
        return url
    name = url[len("env:") :]
    value = os.environ.get(name, "")
    if not value:
        raise ApplicationError(
            f"webhook URL variable {name} is not set on the worker",
            type="ConfigError",
            non_retryable=True,
        )
    return value


class NotifyActivities:
    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http

    @activity.defn(name=names.ACTIVITY_NOTIFY_WEBHOOK)
    async def webhook(self, notification: Notification) -> int:
        url = resolve_url(notification.url)
        try:
            response = await self._http.post(url, json=notification.payload, timeout=10.0)
        except httpx2.TransportError as exc:
            raise ApplicationError(
                f"webhook {url} unreachable: {exc}", type="WebhookUnavailable"
            ) from None
        status = response.status_code
        if status >= 400:
            retryable = status in RETRYABLE_STATUS or status >= 500
            raise ApplicationError(
                f"webhook {url} answered HTTP {status}",
                type="WebhookRejected",
                non_retryable=not retryable,
            )
        return status
