"""Reading Prometheus text exposition from the real servers' exporters."""

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int) -> dict[str, list]:
    """Every sample a /metrics endpoint on loopback serves, by sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def scrape_until(port: int, wanted: set[str], seconds: float = 60) -> dict[str, list]:
    """Scrape until every wanted name is there (counters appear with their first event), or give up."""
    deadline = time.monotonic() + seconds
    while not wanted <= set(samples := scrape(port)) and time.monotonic() < deadline:
        time.sleep(1)
    return samples
