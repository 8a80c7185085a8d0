"""The container's HEALTHCHECK: exit 0 if GET /healthz on this container's port answers 200, else 1.

Standard library only and run as a file (`python /app/healthcheck.py`), so it starts fast and needs none of the
service's imports; Docker/podman run it every interval inside the container.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 4.0  # below the HEALTHCHECK --timeout, so a hung server is reported, not killed mid-check


def main() -> int:
    # The server listens on HOST (0.0.0.0 in the image); loopback reaches it from inside the container.
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            healthy = response.status == 200
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    print(f"{'healthy' if healthy else 'unhealthy'}: {url}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
