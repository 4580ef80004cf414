"""A table copied between systems through Presto's catalogs, its rows counted and checksummed on both sides."""
