"""Sizes on the command line."""

import pytest

from bench.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2GiB", 2 * 1024**3),
        ("512MiB", 512 * 1024**2),
        ("512mib", 512 * 1024**2),
        ("1.5GB", 1_500_000_000),
        ("4096", 4096),
        ("8 KiB", 8192),
    ],
)
def test_parse_size_accepts_binary_and_decimal_units(text: str, expected: int) -> None:
    assert parse_size(text, "--size") == expected


@pytest.mark.parametrize("text", ["two gigs", "2XB", "", "-1GiB"])
def test_parse_size_rejects_garbage_naming_the_option(text: str) -> None:
    with pytest.raises(ValueError, match=r"^--size: .* is not a size; .*512MiB"):
        parse_size(text, "--size")


def test_parse_size_rejects_zero() -> None:
    with pytest.raises(ValueError, match="--size: '0' is less than one byte"):
        parse_size("0", "--size")


def test_format_size_uses_the_largest_exact_binary_unit() -> None:
    assert format_size(2 * 1024**3) == "2 GiB"
    assert format_size(512 * 1024**2) == "512 MiB"
    assert format_size(1_500_000) == "1.4 MiB"
