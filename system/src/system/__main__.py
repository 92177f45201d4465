"""``python -m system`` is the ``callmanager`` command."""

from system.cli import app

if __name__ == "__main__":
    app()
