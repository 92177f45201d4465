"""Alembic versions of the contacts read model (branch ``contacts``)."""
