"""`python -m bench`: the suite against the best single faster-whisper process."""

from __future__ import annotations

import sys

from bench.run import main

sys.exit(main())
