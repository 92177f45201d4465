"""The Alembic environment shared by every service's migrations (see :mod:`system.migrate`)."""
