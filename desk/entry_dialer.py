"""PyInstaller entry of the desk dialer agent (PyInstaller needs a script, not ``module:function``).

A frozen dialer first hands over to a newer release the client has verified and staged (the release zip
holds both programs), as the client itself does; see docs/DESK.md.
"""

import sys

from client.update import switch_to_staged
from dialer_agent.__main__ import main

if __name__ == "__main__":
    if switch_to_staged(sys.argv[1:], program="callmanager-dialer", distribution="callmanager-dialer-agent"):
        sys.exit(0)
    sys.exit(main())
