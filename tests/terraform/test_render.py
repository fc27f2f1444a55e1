"""Rendering templates with the Terraform binary, as templatefile() does in a real apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from terraform_tools import render as terraform_render
from terraform_tools.render import (
    TerraformRenderError,
    render_template,
    render_template_file,
)


def test_variables_keep_their_json_types_in_jsonencode() -> None:
    rendered = render_template(
        "${jsonencode(value)}",
        {"value": {"list": ["a", 1], "number": 2.5, "flag": True, "nothing": None, "map": {}}},
    )

    assert rendered == '{"flag":true,"list":["a",1],"map":{},"nothing":null,"number":2.5}'


def test_numbers_and_strings_interpolate_as_terraform_prints_them() -> None:
    assert render_template("${n}s for ${name}", {"n": 60, "name": "run"}) == "60s for run"


def test_template_directives_are_evaluated() -> None:
    template = "%{ for t in types }${t};%{ endfor }"

    assert render_template(template, {"types": ["g4dn.xlarge", "g5.xlarge"]}) == (
        "g4dn.xlarge;g5.xlarge;"
    )


def test_a_second_render_of_the_same_inputs_does_not_run_terraform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variables = {"token": "cache-check-7f3a"}
    first = render_template("${token}", variables)

    def refuse(*_args: object) -> str:
        raise AssertionError("terraform ran again for a cached render")

    monkeypatch.setattr(terraform_render, "_render_with_terraform", refuse)

    assert render_template("${token}", variables) == first


def test_a_terraform_error_carries_terraforms_own_message() -> None:
    with pytest.raises(
        TerraformRenderError, match=r"(?s)exited 1.*no function named \"no_such_function\""
    ):
        render_template("${no_such_function(1)}", {})


def test_a_variable_name_terraform_cannot_take_is_refused() -> None:
    with pytest.raises(TerraformRenderError, match="'run-defaults' is not a valid Terraform"):
        render_template("x", {"run-defaults": 1})


def test_a_value_that_is_not_json_is_refused() -> None:
    with pytest.raises(TerraformRenderError, match="must be JSON values"):
        render_template("x", {"when": object()})


def test_a_missing_template_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.tftpl"

    with pytest.raises(TerraformRenderError, match=r"template file not found: .*absent\.tftpl"):
        render_template_file(missing, {})
