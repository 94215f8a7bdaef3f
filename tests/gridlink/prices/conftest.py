"""Price fixtures: the test-connection session factory the background writers use."""

from tests.gridlink.openadr.conftest import factory

__all__ = ["factory"]
