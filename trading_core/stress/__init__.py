"""Stress and stability: historical crises, Monte Carlo paths and parameter sweeps (docs/stress.md).

Kept light on import (``trading_core.config`` reads ``stress.config``); the runners live in
``crisis``, ``montecarlo``, ``stability`` and ``suite``.
"""
