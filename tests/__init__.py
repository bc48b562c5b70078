"""The test suite, a package so that its kit is importable as `tests.support`.

Test folders mirror `actors/` and hold only `test_*.py` and `conftest.py`; everything a
test imports or runs besides the project lives in `tests/support/` (or, when the
supervision library ships it, in `actors/supervisor/testing/`).
"""
