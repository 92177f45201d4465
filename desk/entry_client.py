"""PyInstaller entry of the desktop client (PyInstaller needs a script, not ``module:function``)."""

import os
import sys

from client.__main__ import main

if __name__ == "__main__":
    # A windowed Windows build has no console: print() and --version would write to None.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the program
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - as above
    raise SystemExit(main())
