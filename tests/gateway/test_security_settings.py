"""The Prometheus scrape token is a secret like the others: long enough, never shown."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kernel.settings import Settings, masked_view

TOKEN = "s3cr3t-scrape-token-" + "k" * 16


def test_a_short_scrape_token_is_refused_at_start() -> None:
    with pytest.raises(ValidationError):
        Settings(metrics_token="corto")


def test_the_scrape_token_is_left_out_of_the_config_and_masked_in_the_check() -> None:
    settings = Settings(metrics_token=TOKEN)

    assert "metrics_token" not in settings.public_view()
    assert TOKEN not in str(settings.public_view())
    assert masked_view(settings)["CALLMANAGER_METRICS_TOKEN"] == "***"
