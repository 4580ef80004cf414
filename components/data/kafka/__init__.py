"""Kafka in KRaft mode: the nodes component and its configuration files and scripts."""
