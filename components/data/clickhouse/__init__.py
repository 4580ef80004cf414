"""ClickHouse: the server component and its configuration, users and schema."""
