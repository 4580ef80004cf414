"""The JMX exporter rules on the real Kafka (Java agent) and Presto (standalone exporter, see presto_server)."""

import re
import time

from components.data.kafka.config import READINESS_RULES
from components.observability.jmx_exporter import JVM_RULES, KAFKA_RULES, PRESTO_RULES, Rule
from tests.support.events import produce_events
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.metrics import scrape, scrape_until
from tests.support.servers.presto import PrestoCluster, rows


def names(rule: Rule) -> set[str]:
    """Every metric name a rule can produce: its $1 expanded from the pattern's first alternatives."""
    if "$1" not in rule.name:
        return {rule.name}
    alternatives = re.search(r"\(([^()]*)\)", rule.pattern)[1].split("|")
    return {rule.name.replace("$1", alternative).lower() for alternative in alternatives}


def test_every_kafka_rule_yields_its_metrics(kafka_node: KafkaNode, pipeline: str) -> None:
    produce_events(kafka_node, pipeline, f"metrics-{time.time_ns()}", ["a", "b", "c"])
    rules = KAFKA_RULES + JVM_RULES
    # The ClickHouse Kafka engine of the pipeline fixture consumes the topic: bytes out appear then.
    samples = scrape_until(kafka_node.metrics_port, {n for rule in rules for n in names(rule)})
    for rule in rules:
        missing = names(rule) - set(samples)
        assert not missing, f"{rule.pattern} produced none of {missing}"
    topics = {s.labels["topic"] for s in samples["kafka_server_brokertopicmetrics_messagesin_total"]}
    assert pipeline in topics


def test_every_presto_rule_yields_its_metrics(presto: PrestoCluster) -> None:
    assert rows(presto.clients, "SELECT count(*) FROM tpch.tiny.region") == [[5]]
    samples = scrape(presto.exporter.port)
    for rule in PRESTO_RULES + JVM_RULES:
        missing = names(rule) - set(samples)
        assert not missing, f"{rule.pattern} produced none of {missing}"
    # The coordinator counts a node active from its last announcement: a worker late to announce (a busy
    # machine) is missing for a moment, so the count is read until it has both, within a minute.
    deadline = time.monotonic() + 60
    while samples["presto_cluster_active_nodes"][0].value != 2 and time.monotonic() < deadline:
        time.sleep(1)
        samples = scrape(presto.exporter.port)
    assert samples["presto_cluster_active_nodes"][0].value == 2, "the coordinator and the worker"
    assert samples["presto_queries_completed_total"][0].value >= 1


def test_nothing_outside_the_rules_is_exported(kafka_node: KafkaNode) -> None:
    """Only the rules' names, the agent's own JVM and process metrics, and its scrape health."""
    allowed = {n for rule in KAFKA_RULES + JVM_RULES + READINESS_RULES for n in names(rule)}
    for name in scrape(kafka_node.metrics_port):
        assert name in allowed or name.startswith(("jvm_", "process_", "jmx_")), name
