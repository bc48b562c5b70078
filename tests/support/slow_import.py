"""A module that takes a second to import: a zygote's preload step that a fork
request arriving meanwhile waits behind (the zygote loads one entry at a time)."""

from __future__ import annotations

import time

time.sleep(1.0)
