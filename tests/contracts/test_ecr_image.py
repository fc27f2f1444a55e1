"""Terraform and the agent agree on which container images are in ECR: Terraform grants the
instance role pulls on the image's repository (``local.ecr_repository_arn``), the agent logs in
to that registry (``instance_agent.container_image.ecr_image``). Terraform's regex is read out of
main.tf and run here (RE2 and Python's re agree on this pattern) against the agent's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instance_agent.container_image import ecr_image

ROOT = Path(__file__).resolve().parents[2]
IMAGES = [
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/scorer:1.4",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/scorer@sha256:" + "b" * 64,
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/scorer:1.4@sha256:" + "c" * 64,
    "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/m",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/m:2",
    "nvcr.io/nvidia/pytorch:25.01-py3",
    "public.ecr.aws/acme/model:1",
    "pytorch/pytorch:latest",
]


def terraform_pattern() -> re.Pattern[str]:
    text = (ROOT / "terraform/main.tf").read_text(encoding="utf-8")
    (literal,) = re.findall(r'ecr_image\s+=.*?try\(regex\("((?:[^"\\]|\\.)*)"', text)
    return re.compile(literal.replace("\\\\", "\\"))


@pytest.mark.parametrize("image", IMAGES)
def test_terraform_and_the_agent_see_the_same_repository(image: str) -> None:
    match = terraform_pattern().match(image)
    agent = ecr_image(image)

    if agent is None:
        assert match is None
    else:
        assert match is not None
        account, region, repository = match.groups()
        assert (account, region, repository) == (agent.account, agent.region, agent.repository)
