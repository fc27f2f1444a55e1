"""terraform_tools/evaluate.py's pieces that need no Terraform: the rewrites and the test file."""

from __future__ import annotations

from pathlib import Path

import pytest

from terraform_tools import evaluate


def test_a_rewrite_that_finds_nothing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text("condition = var.a >= 20\n")

    with pytest.raises(evaluate.EvaluationError, match=r"var\.b >= 20"):
        evaluate._rewrite(tmp_path, [("var.a >= 20", "var.a >= 1"), ("var.b >= 20", "x")])


def test_rewrites_apply_in_every_tf_file(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "variables.tf").write_text("condition = var.a >= 20\n")
    (tmp_path / "modules" / "variables.tf").write_text("condition = var.a >= 20 && true\n")

    evaluate._rewrite(tmp_path, [("var.a >= 20", "var.a >= 1")])

    assert (tmp_path / "variables.tf").read_text() == "condition = var.a >= 1\n"
    assert (tmp_path / "modules" / "variables.tf").read_text() == "condition = var.a >= 1 && true\n"


def test_the_test_file_has_a_plan_run_per_variable_set_and_the_overrides() -> None:
    text = evaluate._test_file(
        {"plan_a": {"name": "x"}, "plan_b": {"name": "y", "n": 2}},
        {"aws_region": {"region": "us-east-1"}},
        {"module.m.aws_sfn_activity.this": {"id": "placeholder"}},
    )

    assert text.count("command = plan") == 2
    assert 'run "plan_a" {' in text
    assert '  name = "y"' in text
    assert 'mock_data "aws_region" {\n    defaults = {"region": "us-east-1"}' in text
    assert "target = module.m.aws_sfn_activity.this" in text
    assert 'values = {"id": "placeholder"}' in text


def test_different_variables_mock_data_or_overrides_are_different_plans() -> None:
    base = evaluate._key({"a": 1}, {}, (), {}, "tree")

    assert base == evaluate._key({"a": 1}, {}, (), {}, "tree")
    assert base != evaluate._key({"a": 2}, {}, (), {}, "tree")
    assert base != evaluate._key({"a": 1}, {"aws_region": {}}, (), {}, "tree")
    assert base != evaluate._key({"a": 1}, {}, (("x", "y"),), {}, "tree")
    assert base != evaluate._key({"a": 1}, {}, (), {"r": {"id": "p"}}, "tree")
    assert base != evaluate._key({"a": 1}, {}, (), {}, "other tree")
