"""`python -m tests.support.corpus OUTDIR`: write the bad-input corpus and print its table."""

from __future__ import annotations

import sys

from tests.support.corpus.writer import main

sys.exit(main())
