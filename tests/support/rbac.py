"""A small RBAC authorizer for the fake API servers: may a request with these rules go through.

It maps a request to the attributes the API server authorizes (verb, API group, resource with its
subresource, object name), as the Kubernetes authorizer does for the calls verify makes, and admits it
when a rule of the Role grants all of them.
"""

from dataclasses import dataclass
from typing import Any

VERBS = {"POST": "create", "DELETE": "delete", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class Attributes:
    """What the API server authorizes about one request."""

    verb: str
    group: str
    resource: str
    """With its subresource, as in a Role: pods/portforward."""
    name: str | None


def attributes(method: str, path: str, query: dict[str, list[str]]) -> Attributes:
    """The attributes of a namespaced request such as GET /apis/apps/v1/namespaces/ns/deployments/name."""
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    assert rest[:1] == ["namespaces"] and len(rest) >= 3, f"not a namespaced request: {path}"
    resource, name, sub = rest[2], (rest[3] if len(rest) > 3 else None), (rest[4] if len(rest) > 4 else None)
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") == ["true"] else "list")
    else:
        verb = VERBS[method]
    return Attributes(verb, group, f"{resource}/{sub}" if sub else resource, name)


def permits(rules: list[dict[str, Any]], wanted: Attributes) -> bool:
    """Whether one of the rules grants the request."""
    return any(
        _has(rule.get("apiGroups", []), wanted.group)
        and _has(rule.get("resources", []), wanted.resource)
        and _has(rule.get("verbs", []), wanted.verb)
        and (not rule.get("resourceNames") or wanted.name in rule["resourceNames"])
        for rule in rules
    )


def _has(granted: list[str], value: str) -> bool:
    """A rule's list grants the value, or everything ('*')."""
    return "*" in granted or value in granted
