"""The test suite: unit tests, integration tests against real servers, and their support."""
