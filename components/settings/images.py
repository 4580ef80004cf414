"""Image references: pinned to a version tag or a digest, never 'latest' (shared with the policy pack)."""

import re

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def unpinned(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it is."""
    name, _, digest = image.partition("@")
    if digest:
        return None if DIGEST.fullmatch(digest) else "digest must be 'sha256:' followed by 64 hex digits"
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if not tag or tag == "latest":
        return (
            "image is not pinned: give an explicit version tag (not 'latest') or a digest, e.g. 'prestodb/presto:0.287'"
        )
    return None
