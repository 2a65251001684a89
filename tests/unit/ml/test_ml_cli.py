"""``trading models``: parsing stays light, and an empty registry is a one-line error (exit 2)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trading_core.cli import main


def test_models_help_imports_no_ml_library() -> None:
    code = ("import sys; from trading_core.cli import build_parser; build_parser()\n"
            "print(any(m in sys.modules for m in ('sklearn', 'mlflow', 'xgboost', 'shap')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False"]


def test_models_show_when_registry_empty_then_one_line_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["models", "show", "--json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "no 'champion' alias" in err[0] and "trading models bootstrap" in err[0]
