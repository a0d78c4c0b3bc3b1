"""The attack suite starts from the key-delivery tests' entitled box."""

from tests.drm.conftest import box, film  # noqa: F401  (fixtures, found by name)
