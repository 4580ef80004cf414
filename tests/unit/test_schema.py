"""Every Kubernetes object the stacks declare validates strictly against the official OpenAPI schema."""

import kubernetes_validate
import pytest

from tests.support.render import KUBERNETES_VERSIONS, Rendered


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_strictly(stack: Rendered, version: str) -> None:
    objects = stack.kubernetes_objects()
    assert objects, f"stack {stack.stack} declared no Kubernetes objects"
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj.inputs, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj.label}: {error.message} at {'/'.join(map(str, error.path))}")
    assert not errors, f"stack {stack.stack}, Kubernetes {version}:\n" + "\n".join(errors)


def test_strict_validation_rejects_unknown_fields(stack: Rendered) -> None:
    namespace = dict(stack.of_kind("Namespace")[0].inputs)
    namespace["spec"] = {"finalizers": ["kubernetes"], "replicas": 3}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(namespace, KUBERNETES_VERSIONS[0], strict=True)
