"""Which images are in ECR, and where their layers go on the instance store."""

from __future__ import annotations

from pathlib import Path

import pytest

from instance_agent.container_image import EcrImage, ecr_image, store_directory


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/scorer:1.4",
            EcrImage("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "123456789012", "eu-west-1",
                     "scorer"),
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/scorer@sha256:" + "a" * 64,
            EcrImage("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1",
                     "team/scorer"),
        ),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/m",
            EcrImage("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "123456789012",
                     "us-gov-west-1", "m"),
        ),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/m:2",
            EcrImage("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "123456789012",
                     "cn-north-1", "m"),
        ),
    ],
)  # fmt: skip
def test_an_ecr_image_names_its_registry_region_and_repository(
    image: str, expected: EcrImage
) -> None:
    assert ecr_image(image) == expected


@pytest.mark.parametrize(
    "image",
    [
        "nvcr.io/nvidia/pytorch:25.01-py3",
        "public.ecr.aws/acme/model:1",
        "pytorch/pytorch:latest",
        "12345.dkr.ecr.eu-west-1.amazonaws.com/short-account:1",
    ],
)
def test_other_images_are_not_ecr_ones(image: str) -> None:
    assert ecr_image(image) is None


def test_each_data_root_gets_its_own_directory_on_the_store() -> None:
    store = Path("/mnt/model-store")

    assert store_directory(store, "/var/lib/docker") == store / "container-data/var-lib-docker"
    assert store_directory(store, "/var/lib/containerd/") == (
        store / "container-data/var-lib-containerd"
    )
