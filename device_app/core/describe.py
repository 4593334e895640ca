"""Plain words for what a login request asks: scopes and authorization_details (RFC 9396).

The provider sends a description with each scope; these are the fallbacks for when it does not.
"""

from __future__ import annotations

from typing import Any

SCOPE_WORDS = {
    "openid": "Confirm your identity",
    "profile": "Your name and profile",
    "email": "Your email address",
    "phone": "Your phone number",
    "address": "Your postal address",
    "offline_access": "Stay signed in (refresh tokens)",
}


def scope_lines(scopes: list[Any] | None) -> list[str]:
    """One plain line per scope: the provider's description, or ours, or the scope itself."""
    lines = []
    for entry in scopes or []:
        if isinstance(entry, dict):
            scope = str(entry.get("scope", ""))
            text = entry.get("description") or SCOPE_WORDS.get(scope) or scope
        else:
            scope = str(entry)
            text = SCOPE_WORDS.get(scope, scope)
        if text:
            lines.append(str(text))
    return lines


def _amount(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('amount', '?')} {value.get('currency', '')}".strip()
    return str(value)


def _detail_line(detail: dict[str, Any]) -> str:
    kind = str(detail.get("type", "details"))
    amount = detail.get("instructedAmount") or detail.get("amount")
    if amount is not None:
        creditor = detail.get("creditorName") or detail.get("payee") or ""
        account = detail.get("creditorAccount")
        iban = account.get("iban") if isinstance(account, dict) else None
        text = f"Pay {_amount(amount)}"
        if creditor:
            text += f" to {creditor}"
        if iban:
            text += f" ({iban})"
        if detail.get("remittanceInformationUnstructured"):
            text += f" — {detail['remittanceInformationUnstructured']}"
        return text
    fields = [f"{key}: {value}" for key, value in detail.items()
              if key != "type" and isinstance(value, (str, int, float))]
    lists = [f"{key}: {', '.join(map(str, value))}" for key, value in detail.items()
             if isinstance(value, list)]
    body = "; ".join(fields + lists)
    return f"{kind.replace('_', ' ').capitalize()}" + (f" — {body}" if body else "")


def details_lines(details: Any) -> list[str]:
    """One line per authorization_details entry (payments spelled out), [] when absent."""
    if not details:
        return []
    if isinstance(details, dict):
        details = [details]
    return [_detail_line(d) if isinstance(d, dict) else str(d) for d in details]
