"""verify: post-deploy checks that tell, with measured figures, whether a deployed stack works."""

__version__ = "0.1.0"
"""The project's version, as pyproject.toml states it (a unit test keeps the two equal); `verify --version`."""
