"""Fixtures of the tests that start a real Jupyter server with nbtrack's extension:
unauthenticated access disabled (every route must ask for the token) and no
``NBTRACK_STORE`` from the environment (the store is the notebook's)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"nbtrack": True},
            "allow_unauthenticated_access": False,
        }
    }


@pytest.fixture(autouse=True)
def _no_store_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBTRACK_STORE", raising=False)
