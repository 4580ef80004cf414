"""Prometheus sampled while load runs: CPU and memory per pod against requests and limits, replicas, queued queries."""

import threading
import time

import requests

SERIES = {
    "cpu_cores": 'sum by (pod) (rate(container_cpu_usage_seconds_total{{namespace="{ns}",container!=""}}[1m]))',
    "cpu_request": 'sum by (pod) (kube_pod_container_resource_requests{{namespace="{ns}",resource="cpu"}})',
    "cpu_limit": 'sum by (pod) (kube_pod_container_resource_limits{{namespace="{ns}",resource="cpu"}})',
    "memory_bytes": 'sum by (pod) (container_memory_working_set_bytes{{namespace="{ns}",container!=""}})',
    "memory_request": 'sum by (pod) (kube_pod_container_resource_requests{{namespace="{ns}",resource="memory"}})',
    "memory_limit": 'sum by (pod) (kube_pod_container_resource_limits{{namespace="{ns}",resource="memory"}})',
    "replicas": (
        'max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{{namespace="{ns}"}})'
    ),
    "queued_queries": "sum(presto_queries_queued)",
    "running_queries": "sum(presto_queries_running)",
}
"""What is sampled, by name: cAdvisor and kube-state-metrics for pods and HPAs, Presto's JMX exporter for queries."""

Samples = dict[str, dict[str, list[tuple[float, float]]]]
"""Series name -> label value (the pod, the HPA, or "" for a sum) -> (seconds since the run began, value)."""


class Sampler:
    """Queries Prometheus every `interval` seconds on its own thread, until stopped; never fails the run."""

    def __init__(self, prometheus: str, namespace: str, interval: float):
        self._url, self._interval = f"{prometheus.rstrip('/')}/api/v1/query", interval
        self._queries = {name: query.format(ns=namespace) for name, query in SERIES.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="prometheus-sampler", daemon=True)
        self.began = time.perf_counter()
        """The run's clock: samples and operations are timed in seconds from it."""
        self.samples: Samples = {name: {} for name in SERIES}
        self.failures: list[str] = []

    def start(self) -> "Sampler":
        """Begin sampling now."""
        self.began = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop.set()
        self._thread.join()
        self._sample()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def _sample(self) -> None:
        at = round(time.perf_counter() - self.began, 3)
        for name, query in self._queries.items():
            try:
                answer = requests.get(self._url, params={"query": query}, timeout=min(5.0, self._interval))
                answer.raise_for_status()
                result = answer.json()["data"]["result"]
            except OSError as error:  # unreachable or timed out (requests' errors are OSErrors): try next round
                self.failures.append(f"{name}: {type(error).__name__}: {error}"[:300])
                return
            except (ValueError, KeyError) as error:  # an answer that is not the API's
                self.failures.append(f"{name}: {type(error).__name__}: {error}"[:300])
                continue
            for series in result:
                label = next(iter(series["metric"].values()), "")
                self.samples[name].setdefault(label, []).append((at, float(series["value"][1])))

    def report(self) -> dict:
        """The samples, the series that had no data, and how many queries failed."""
        return {
            "interval_s": self._interval,
            "series": {name: found for name, found in self.samples.items() if found},
            "no_data": sorted(name for name, found in self.samples.items() if not found),
            "failed_queries": len(self.failures),
            "first_failure": self.failures[0] if self.failures else None,
        }
