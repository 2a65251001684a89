"""Stress and stability: a crisis-partitioned survival/Monte Carlo asset and a sweep asset."""
