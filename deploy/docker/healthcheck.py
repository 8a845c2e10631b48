"""Docker HEALTHCHECK: healthy when the vtx service in this container answers /health/live.

One image runs any service, so try each service's port (VTX_*_PORT or the defaults);
only the one this container runs will answer.
"""

from __future__ import annotations

import os
import sys
import urllib.request

PORTS = {
    "VTX_GATEWAY_PORT": 8000,
    "VTX_SPLITTER_PORT": 8001,
    "VTX_TRANSCRIBER_PORT": 8002,
    "VTX_HEALTH_PORT": 8003,
    "VTX_SPEAKERS_PORT": 8004,
}


def main() -> int:
    for env, default in PORTS.items():
        url = f"http://127.0.0.1:{os.environ.get(env, default)}/health/live"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return 0
        except OSError:
            continue
    return 1


if __name__ == "__main__":
    sys.exit(main())
