"""Fixtures for the document tests: the project's templates and a writable copy of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"


@pytest.fixture
def templates_dir() -> Path:
    return TEMPLATES


@pytest.fixture
def tmp_templates(tmp_path: Path) -> Path:
    """A copy of templates/ (pdf, excel, xml) that a test may edit."""
    target = tmp_path / "templates"
    for sub in ("pdf", "excel", "xml"):
        shutil.copytree(TEMPLATES / sub, target / sub)
    return target
