"""Alembic versions of the event store tables (branch ``kernel``), applied by :mod:`system.migrate`."""
