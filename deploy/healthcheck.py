"""Container healthcheck: exit 0 when GET /health answers 200 (port: the argument, else CALLMANAGER_PORT).

Standard library only, so it runs in the image without curl. A ``degraded`` status (a failing backup) is
still 200: the container is serving, and /health says what is wrong.
"""

import os
import sys
import urllib.request

port = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CALLMANAGER_PORT", "5000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError as exc:
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
