from alert_receivers import smtp  # noqa: F401  (fixture)
