"""Fixtures of the preseed tests: the archives, built once per session."""

from __future__ import annotations

import pytest

from tests.support.preseed_archives import Archives, build_archives


@pytest.fixture(scope="session")
def archives(tmp_path_factory: pytest.TempPathFactory) -> Archives:
    return build_archives(tmp_path_factory.mktemp("archives"))
