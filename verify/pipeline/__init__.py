"""`verify pipeline`: events from Kafka to ClickHouse and through Presto."""
