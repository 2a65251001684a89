"""Market-data ingestion: one daily-partitioned asset per configured universe."""
