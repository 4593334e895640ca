"""Alembic migrations of the provider's database (see server/storage/migrate.py and
docs/deployment.md "Database migrations")."""
