"""The data engines: Presto, Kafka and ClickHouse, each a component beside its pure config functions."""
