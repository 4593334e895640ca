"""Errors of the device protocol (docs/device-protocol.md), one class per error code.

Each carries its HTTP status and a JSON body ``{"error", "error_description", ...}``; the web
layer turns any of them into a response in one place.
"""

from __future__ import annotations


class DeviceError(Exception):
    error = "invalid_request"
    status = 400

    def __init__(self, description: str = "", **extra) -> None:
        super().__init__(description or self.error)
        self.description = description
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        body.update(self.extra)
        return body


class InvalidRequest(DeviceError):
    error, status = "invalid_request", 400


class InvalidCode(DeviceError):
    error, status = "invalid_code", 400


class TooManyRequests(DeviceError):
    error, status = "too_many_requests", 429

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.headers["Retry-After"] = str(max(1, int(retry_after)))


class InvalidToken(DeviceError):
    error, status = "invalid_token", 401


class NotFound(DeviceError):
    error, status = "not_found", 404


class AlreadyDecided(DeviceError):
    error, status = "already_decided", 409


class Expired(DeviceError):
    error, status = "expired", 410


class PushUnavailable(DeviceError):
    """The push channel chosen at enrollment could not be set up (e.g. Gotify unreachable)."""

    error, status = "temporarily_unavailable", 503
