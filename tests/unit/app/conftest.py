"""The app's tests: a seeded data directory (built once per test session, copied per test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from app_support import Seeded, seeded_copy


@pytest.fixture(scope="session")
def _seed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("app-seed")


@pytest.fixture
def seeded(tmp_path: Path, _seed_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    s = seeded_copy(tmp_path / "data", _seed_cache)
    monkeypatch.setenv("TRADING_DATA_DIR", str(s.root))
    st.cache_data.clear()
    return s


@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    monkeypatch.setenv("TRADING_DATA_DIR", str(d))
    st.cache_data.clear()
    return d
