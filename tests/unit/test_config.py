"""service.config: settings that could not take effect are refused when the service starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config import Settings


def test_a_long_poll_bound_above_the_apis_own_is_refused() -> None:
    # the routes refuse ?wait= above 60 (openapi.yaml), so a higher bound would do nothing
    with pytest.raises(ValidationError) as error:
        Settings(max_wait_seconds=61)
    assert "max_wait_seconds" in str(error.value)
    assert "less than or equal to 60" in str(error.value)


def test_a_lower_long_poll_bound_is_kept() -> None:
    assert Settings(max_wait_seconds=5).max_wait_seconds == 5
