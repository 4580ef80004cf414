"""Tests that need no server: the rendered stacks, pure config functions, verify's logic."""
