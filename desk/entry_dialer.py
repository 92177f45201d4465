"""PyInstaller entry of the desk dialer agent (PyInstaller needs a script, not ``module:function``)."""

import sys

from dialer_agent.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
