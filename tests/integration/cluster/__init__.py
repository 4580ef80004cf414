"""Tests on one replicated ClickHouse (2 x 2 on ZooKeeper, its own Kafka), started for this folder only."""
