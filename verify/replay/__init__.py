"""`verify replay`: a Kafka topic replayed into ClickHouse from an offset or a time, counted, duplicates collapsed."""
