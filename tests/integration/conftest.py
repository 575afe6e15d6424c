"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.previewctl import PreviewServer, running_preview

EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A copy of the example catalog that the test may edit."""
    target = tmp_path / "catalog"
    shutil.copytree(EXAMPLE_CATALOG, target)
    return target


@pytest.fixture
def server(catalog: Path, tmp_path: Path) -> Iterator[PreviewServer]:
    """The live preview page over ``catalog``, stopped at teardown."""
    with running_preview(catalog, tmp_path) as srv:
        yield srv
