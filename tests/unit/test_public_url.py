"""A source URL's credentials: split off for the download, never part of a stored URL."""

from __future__ import annotations

import pytest

from include.taxi import redact
from include.taxi.errors import SourceNotPublished
from include.taxi.months import Month
from include.taxi.sources.catalogue import Source


def test_userinfo_is_split_off_and_query_secrets_hidden() -> None:
    url = "https://us%40er:p%2Fss@mirror.example:8443/dl/x.csv.gz?v=2&token=abc"
    public, auth = redact.split_credentials(url)
    assert public == "https://mirror.example:8443/dl/x.csv.gz?v=2&token=…"
    assert auth == ("us@er", "p/ss")
    assert redact.public_url("https://mirror.example/dl/x.csv.gz") == (
        "https://mirror.example/dl/x.csv.gz"
    )
    assert redact.split_credentials("http://[::1]:8080/a")[1] is None


def test_a_source_shows_only_its_public_url() -> None:
    source = Source("mirror", "https://reader:s3cret@mirror.example/releases")
    assert source.base == "https://mirror.example/releases"
    assert source.url("green", Month(2021, 2)) == (
        "https://mirror.example/releases/green/green_tripdata_2021-02.csv.gz"
    )
    assert "s3cret" not in repr(source)
    assert "s3cret" not in str(SourceNotPublished(source.url("green", Month(2021, 2))))
    tlc = Source("tlc", "https://reader:s3cret@tlc.example")
    with pytest.raises(SourceNotPublished) as skipped:
        tlc.check_month("fhvhv", Month(2018, 12))
    assert "s3cret" not in str(skipped.value)
    assert "s3cret" not in skipped.value.url
