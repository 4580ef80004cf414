"""The app.kubernetes.io/* labels every object carries, and the subset that selects pods."""

from components.settings.model import PROJECT

VERSION = "app.kubernetes.io/version"
"""The label that follows the image: never in a selector or a volumeClaimTemplate (both immutable)."""


def selector_labels(name: str, component: str, instance: str) -> dict[str, str]:
    """Labels that identify one workload's pods; immutable once a selector uses them."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/instance": instance,
    }


def common_labels(name: str, component: str, instance: str, version: str | None = None) -> dict[str, str]:
    """Recommended labels for an object of this stack."""
    labels = {
        **selector_labels(name, component, instance),
        "app.kubernetes.io/part-of": PROJECT,
        "app.kubernetes.io/managed-by": "pulumi",
    }
    if version:
        labels[VERSION] = version
    return labels


def stable_labels(labels: dict[str, str]) -> dict[str, str]:
    """The labels that never change over the object's life (all but the version): for immutable fields."""
    return {key: value for key, value in labels.items() if key != VERSION}


def image_version(image: str) -> str:
    """The app.kubernetes.io/version of a pinned image: its tag, or the start of its digest."""
    name, _, digest = image.partition("@")
    if digest:
        return digest.removeprefix("sha256:")[:12]
    return name.rsplit("/", 1)[-1].partition(":")[2]
