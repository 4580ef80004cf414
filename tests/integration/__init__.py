"""Tests against the real servers, tools and policy virtualenv that scripts/test installs."""
