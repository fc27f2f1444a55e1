"""The Terraform READMEs' Inputs and Outputs tables, as tests.support.tf_docs writes them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import tf_docs
from tests.support.tf_docs import BEGIN, END, stale_readmes

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "terraform"

MODULE = """\
variable "bucket_name" {
  description = "Name of the bucket: 3-63 characters | lowercase, e.g. <project>-models."
  type        = string
}

variable "prefixes" {
  description = "Prefixes `models/*` may be read under; s3:prefix limited to *these*."
  type        = list(string)
  default     = ["models/", "agent/"]
}

variable "retry" {
  description = "Retry policy."
  type = object({
    attempts = optional(number, 3)
  })
  default = {}
}

variable "kms_key_arn" {
  description = "KMS key, or null."
  type        = string
  default     = null
}

variable "enabled" {
  description = "Whether it runs."
  type        = bool
  default     = true
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = "arn"
}
"""


def module(
    tmp_path: Path, readme: str = f"# a module\n\nHand-written.\n\n{BEGIN}\n{END}\n"
) -> Path:
    directory = tmp_path / "module"
    directory.mkdir()
    (directory / "main.tf").write_text(MODULE)
    (directory / "README.md").write_text(readme)
    return directory


def table_rows(readme: Path) -> dict[str, str]:
    """Table row by its first cell (`` `name` ``), for the module's one README."""
    rows = {}
    for line in readme.read_text().splitlines():
        if line.startswith("| `"):
            rows[line.split(" | ", 1)[0].removeprefix("| ")] = line
    return rows


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(
        TERRAFORM_DIR, copy, ignore=shutil.ignore_patterns(".terraform*", "build", "*.tfstate*")
    )
    return copy


def test_every_terraform_readme_has_the_tables_of_its_module() -> None:
    stale = stale_readmes([TERRAFORM_DIR], write=False)

    assert not stale, f"out of date (run `make docs`): {[str(p) for p in stale]}"


def test_a_changed_description_makes_the_check_fail_and_names_the_readme(
    terraform_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variables = terraform_copy / "modules/workflow/variables.tf"
    readme = terraform_copy / "modules/workflow/README.md"
    before = readme.read_text()
    variables.write_text(
        variables.read_text().replace(
            "Name of the model bucket (models/ in, runs/ out).", "Name of the model bucket."
        )
    )

    assert tf_docs.main(["--check", str(terraform_copy)]) == 1

    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{readme}: out of date"]
    assert "run `make docs`" in err
    assert readme.read_text() == before


def test_regenerating_writes_the_new_description_and_the_check_then_passes(
    terraform_copy: Path,
) -> None:
    variables = terraform_copy / "modules/workflow/variables.tf"
    variables.write_text(
        variables.read_text().replace(
            "Name of the model bucket (models/ in, runs/ out).", "Name of the model bucket."
        )
    )

    assert tf_docs.main([str(terraform_copy)]) == 0

    row = table_rows(terraform_copy / "modules/workflow/README.md")["`model_bucket_name`"]
    assert row == "| `model_bucket_name` | Name of the model bucket. | `string` | n/a | yes |"
    assert tf_docs.main(["--check", str(terraform_copy)]) == 0


def test_the_text_outside_the_markers_is_kept(tmp_path: Path) -> None:
    directory = module(tmp_path, f"# a module\n\nHand-written.\n\n{BEGIN}\nold\n{END}\n\nAfter.\n")

    tf_docs.main([str(directory)])

    text = (directory / "README.md").read_text()
    assert text.startswith(f"# a module\n\nHand-written.\n\n{BEGIN}\n")
    assert text.endswith(f"{END}\n\nAfter.\n")
    assert "old" not in text


def test_a_required_input_shows_no_default_and_yes(tmp_path: Path) -> None:
    directory = module(tmp_path)
    tf_docs.main([str(directory)])

    row = table_rows(directory / "README.md")["`bucket_name`"]
    assert row.endswith("| `string` | n/a | yes |")


def test_defaults_are_written_as_hcl(tmp_path: Path) -> None:
    directory = module(tmp_path)
    tf_docs.main([str(directory)])

    rows = table_rows(directory / "README.md")
    assert rows["`prefixes`"].endswith('| `list(string)` | `["models/", "agent/"]` | no |')
    assert rows["`retry`"].endswith("| `object({attempts = optional(number, 3)})` | `{}` | no |")
    assert rows["`kms_key_arn`"].endswith("| `string` | `null` | no |")
    assert rows["`enabled`"].endswith("| `bool` | `true` | no |")


def test_pipes_tags_and_stars_in_descriptions_cannot_break_the_table(tmp_path: Path) -> None:
    directory = module(tmp_path)
    tf_docs.main([str(directory)])

    rows = table_rows(directory / "README.md")
    assert "3-63 characters \\| lowercase, e.g. \\<project>-models." in rows["`bucket_name`"]
    # Inside a code span only the pipe needs escaping; outside, * would start emphasis.
    assert (
        "Prefixes `models/*` may be read under; s3:prefix limited to \\*these\\*."
        in (rows["`prefixes`"])
    )


def test_outputs_are_listed_with_their_descriptions(tmp_path: Path) -> None:
    directory = module(tmp_path)
    tf_docs.main([str(directory)])

    assert table_rows(directory / "README.md")["`bucket_arn`"] == (
        "| `bucket_arn` | ARN of the bucket. |"
    )


def test_a_readme_without_markers_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = module(tmp_path, "# a module\n\n## Inputs\n")

    assert tf_docs.main(["--check", str(directory)]) == 2

    assert f"needs one {BEGIN} line, then one {END} line" in capsys.readouterr().err


def test_a_module_without_a_readme_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = module(tmp_path)
    (directory / "README.md").unlink()

    assert tf_docs.main(["--check", str(directory)]) == 2

    assert "no README.md" in capsys.readouterr().err
