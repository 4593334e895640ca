"""The ``login_request`` object a device sees (docs/device-protocol.md §4): never the client's
auth_req_id, never a token."""

from __future__ import annotations

import json

from ..notify import LoginRequestEvent
from ..storage.models import CibaRequest, Client


def scopes(scope: str) -> list[dict[str, str]]:
    from ..provider import SCOPES  # late: provider.py may install this package

    return [{"scope": s, "description": SCOPES.get(s, s)} for s in scope.split()]


def login_request(*, request_id: str, client_name: str, binding_message: str | None, scope: str,
                  acr_values: str | None, authorization_details: list | None, created_at: float,
                  expires_at: float, status: str = "pending", client_uri: str | None = None,
                  logo_uri: str | None = None) -> dict:
    return {"request_id": request_id, "client_name": client_name,
            "client_uri": client_uri, "logo_uri": logo_uri,
            "binding_message": binding_message, "scopes": scopes(scope),
            "acr_values": acr_values, "authorization_details": authorization_details,
            "created_at": int(created_at), "expires_at": int(expires_at), "status": status}


def from_event(event: LoginRequestEvent) -> dict:
    return login_request(request_id=event.request_id, client_name=event.client_name,
                         binding_message=event.binding_message, scope=event.scope,
                         acr_values=event.acr_values,
                         authorization_details=event.authorization_details,
                         created_at=event.created_at, expires_at=event.expires_at,
                         client_uri=event.client_uri, logo_uri=event.logo_uri)


def from_row(req: CibaRequest, client: Client | None, status: str) -> dict:
    details = json.loads(req.authorization_details) if req.authorization_details else None
    client_name = (client.name or client.client_id) if client else req.client_id
    return login_request(request_id=req.device_request_id, client_name=client_name,
                         client_uri=client.client_uri if client else None,
                         logo_uri=client.logo_uri if client else None,
                         binding_message=req.binding_message, scope=req.scope,
                         acr_values=req.acr_values, authorization_details=details,
                         created_at=req.created_at, expires_at=req.expires_at, status=status)
