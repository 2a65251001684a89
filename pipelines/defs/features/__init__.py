"""Features and regimes: one ``<universe>_features`` asset downstream of each ``<universe>_bars``."""
