"""The price table and the cost of one run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instance_agent import prices


def test_an_hour_of_g4dn_xlarge_in_us_east_1_costs_its_hourly_price() -> None:
    estimate = prices.estimate_run_cost("g4dn.xlarge", "us-east-1", 3600)

    assert estimate.instance_usd == pytest.approx(0.526)
    assert estimate.total_usd == pytest.approx(0.526)


def test_a_life_shorter_than_a_minute_is_billed_as_a_minute() -> None:
    estimate = prices.estimate_run_cost("g5.xlarge", "us-east-1", 10)

    assert estimate.instance_usd == pytest.approx(1.006 / 60)


def test_the_root_volume_is_prorated_from_the_monthly_gp3_price() -> None:
    estimate = prices.estimate_run_cost("g4dn.xlarge", "us-east-1", 3600, root_volume_gib=120)

    assert estimate.root_volume_usd == pytest.approx(120 * 0.08 / 730)


def test_s3_requests_are_priced_per_thousand() -> None:
    estimate = prices.estimate_run_cost(
        "g4dn.xlarge", "us-east-1", 3600, get_requests=2000, put_requests=1000
    )

    assert estimate.s3_requests_usd == pytest.approx(2 * 0.0004 + 0.005)


def test_the_total_is_instance_plus_volume_plus_requests() -> None:
    estimate = prices.estimate_run_cost(
        "g5.xlarge", "eu-west-1", 1800, root_volume_gib=100, get_requests=700, put_requests=3
    )

    assert estimate.total_usd == pytest.approx(
        estimate.instance_usd + estimate.root_volume_usd + estimate.s3_requests_usd
    )
    assert estimate.instance_usd == pytest.approx(1.123 / 2)


def test_an_unlisted_instance_type_is_refused_naming_it_and_the_file_to_edit() -> None:
    with pytest.raises(prices.UnknownPriceError, match=r"'p5\.48xlarge'.*instance_agent/prices"):
        prices.estimate_run_cost("p5.48xlarge", "us-east-1", 60)


def test_an_unlisted_region_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(prices.UnknownPriceError, match=r"ap-south-1.*us-east-1"):
        prices.hourly_price("g4dn.xlarge", "ap-south-1")


def test_a_negative_lifetime_is_refused() -> None:
    with pytest.raises(ValueError, match="lifetime_seconds"):
        prices.estimate_run_cost("g4dn.xlarge", "us-east-1", -1)


def test_every_region_with_instance_prices_has_request_and_storage_rates() -> None:
    assert set(prices.ON_DEMAND_HOURLY) == set(prices.REGIONAL_RATES)


def test_the_table_carries_its_date_and_sources() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices.PRICES_AS_OF)
    assert all(source.startswith("https://aws.amazon.com/") for source in prices.SOURCES)


def test_the_default_instance_types_of_terraform_have_a_price_in_us_east_1() -> None:
    for instance_type in ("g5.xlarge", "g6.xlarge", "g4dn.xlarge"):
        assert prices.hourly_price(instance_type, "us-east-1") > 0


def test_a_5_gb_model_copy_needs_one_get_per_8_mib_part_plus_one_per_file() -> None:
    assert prices.model_copy_get_requests(3, 5_000_000_000) == 3 + 597


def test_the_record_form_names_the_price_date() -> None:
    record = prices.estimate_run_cost("g4dn.xlarge", "us-east-1", 1200).as_record()

    assert record["prices_as_of"] == prices.PRICES_AS_OF
    assert record["total_usd"] == pytest.approx(0.1753, abs=1e-4)


def test_the_weekly_figures_of_the_operations_guide_follow_from_the_table() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    gets = prices.model_copy_get_requests(10, 5_000_000_000)
    ours = prices.estimate_run_cost(
        "g4dn.xlarge", "us-east-1", 34.5 * 60, root_volume_gib=120, get_requests=gets
    )
    snapshot = prices.estimate_run_cost("g4dn.xlarge", "us-east-1", 59 * 60, root_volume_gib=120)

    assert f"${ours.instance_usd:.4f}" in guide
    assert f"${ours.root_volume_usd:.4f}" in guide
    assert f"${snapshot.instance_usd:.4f}" in guide
    assert f"${snapshot.root_volume_usd:.4f}" in guide
    assert gets == 10 + 597
