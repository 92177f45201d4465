"""Alembic versions of the gateway's tables (branch ``gateway``), applied by :mod:`system.migrate`."""
