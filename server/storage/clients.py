"""Client registration repository."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import Client


def add(s: Session, client: Client) -> Client:
    if s.get(Client, client.client_id) is not None:
        raise ValueError(f"client {client.client_id!r} already exists")
    s.add(client)
    s.flush()
    return client


def get(s: Session, client_id: str) -> Client | None:
    return s.get(Client, client_id)


def all_clients(s: Session) -> list[Client]:
    return list(s.scalars(select(Client).order_by(Client.client_id)))


def ids_with_auth_method(s: Session, method: str) -> list[str]:
    return list(s.scalars(select(Client.client_id).where(Client.auth_method == method)))


def remove(s: Session, client_id: str) -> bool:
    client = s.get(Client, client_id)
    if client is None:
        return False
    s.delete(client)
    return True


def set_secret_hash(s: Session, client_id: str, old_hash: str, new_hash: str) -> None:
    """Replace a secret hash after a successful check, unless the secret changed meanwhile."""
    s.execute(update(Client).where(Client.client_id == client_id, Client.secret_hash == old_hash)
              .values(secret_hash=new_hash))
