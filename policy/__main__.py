"""The stack's CrossGuard policy pack: `pulumi preview --policy-pack policy/` refuses what breaks a rule."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from rules import DEFAULTS, RULES, Resource, Rule

SCHEMA = PolicyConfigSchema(
    properties={
        "chaosNamespace": {"type": "string", "default": DEFAULTS["chaosNamespace"]},
        "allowedServiceTypes": {
            "type": "array",
            "items": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
            "default": DEFAULTS["allowedServiceTypes"],
        },
        "highAvailabilityStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULTS["highAvailabilityStacks"],
        },
    }
)


def settings(config: dict) -> dict:
    """The policy's config over the defaults."""
    return {**DEFAULTS, **config}


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    """A rule on each resource."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in rule.check(Resource(args.resource_type, args.props, args.urn), settings(args.get_config())):
            report(message)

    return ResourceValidationPolicy(rule.name, rule.description, validate, config_schema=SCHEMA)


def stack_policy(rule: Rule) -> StackValidationPolicy:
    """A rule on the whole stack."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [Resource(r.resource_type, r.props, r.urn) for r in args.resources]
        for message in rule.check(resources, settings(args.get_config())):
            report(message)

    return StackValidationPolicy(rule.name, rule.description, validate, config_schema=SCHEMA)


PolicyPack(
    name="query-engine-stack",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[stack_policy(rule) if rule.stack else resource_policy(rule) for rule in RULES],
)
