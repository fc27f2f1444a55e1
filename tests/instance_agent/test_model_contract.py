"""The model contract (instance_agent/README.md, "The model"): what a model command gets, run
for real: the command forms, the variables, the working directory, the environment, the Python,
exit codes and signals, and its output."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from instance_agent.config import RunSettings
from instance_agent.errors import ModelCommandFailed, ModelEntryPointMissing
from instance_agent.runner import RunPaths, build_command, run_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_MODEL = ROOT / "examples" / "model"


@pytest.fixture
def paths(tmp_path: Path) -> RunPaths:
    model = tmp_path / "store" / "model"
    output = tmp_path / "store" / "output"
    model.mkdir(parents=True)
    output.mkdir()
    task_input = tmp_path / "store" / "task-input.json"
    task_input.write_text(json.dumps({"parameters": {"week": 48}}), encoding="utf-8")
    return RunPaths(model, output, task_input, "week-48")


def run(settings: RunSettings, paths: RunPaths) -> None:
    run_model(build_command(settings, paths), 30, kill_grace_seconds=1)


def test_a_shell_command_gets_every_variable_expanded(paths: RunPaths) -> None:
    shell = 'echo "$MODEL_DIR|$OUTPUT_DIR|$TASK_INPUT|$RUN_NAME" > "$OUTPUT_DIR/seen"'

    run(RunSettings(shell_command=shell), paths)

    seen = (paths.output_dir / "seen").read_text().strip()
    assert seen == f"{paths.model_dir}|{paths.output_dir}|{paths.task_input}|week-48"


def test_a_shell_command_can_read_the_task_input_it_names(paths: RunPaths) -> None:
    shell = f'{sys.executable} -c "import json,os; print(json.load(open(os.environ[\'TASK_INPUT\'])))" > "$OUTPUT_DIR/task"'  # noqa: E501

    run(RunSettings(shell_command=shell), paths)

    assert (paths.output_dir / "task").read_text().strip() == "{'parameters': {'week': 48}}"


def test_an_argument_list_is_passed_literally_without_a_shell(paths: RunPaths) -> None:
    code = "import sys, os; open(os.environ['OUTPUT_DIR'] + '/argv', 'w').write(sys.argv[1])"

    run(RunSettings(command=[sys.executable, "-c", code, "$MODEL_DIR/*"]), paths)

    assert (paths.output_dir / "argv").read_text() == "$MODEL_DIR/*"


def test_the_working_directory_is_the_model_directory(paths: RunPaths) -> None:
    run(RunSettings(shell_command='pwd -P > "$OUTPUT_DIR/cwd"'), paths)

    assert (paths.output_dir / "cwd").read_text().strip() == str(paths.model_dir.resolve())


def test_the_model_inherits_the_agents_environment(
    paths: RunPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    run(RunSettings(shell_command='echo "$AWS_REGION" > "$OUTPUT_DIR/region"'), paths)

    assert (paths.output_dir / "region").read_text().strip() == "eu-west-1"


def test_without_a_command_the_models_run_sh_runs_even_if_not_executable(
    paths: RunPaths,
) -> None:
    entry = paths.model_dir / "run.sh"
    entry.write_text('echo "from run.sh in $(pwd)" > "$OUTPUT_DIR/ran"\n', encoding="utf-8")
    entry.chmod(0o644)  # as the copy from S3 leaves it

    run(RunSettings(), paths)

    assert (paths.output_dir / "ran").read_text().strip() == f"from run.sh in {paths.model_dir}"


def test_without_a_command_or_a_run_sh_the_run_fails_saying_what_to_do(paths: RunPaths) -> None:
    with pytest.raises(ModelEntryPointMissing, match=r"has no run\.sh at its top.*publish"):
        build_command(RunSettings(), paths)


def test_model_python_is_the_first_candidate_that_exists_and_leads_the_path(
    paths: RunPaths, tmp_path: Path
) -> None:
    venv_bin = tmp_path / "opt" / "pytorch" / "bin"
    venv_bin.mkdir(parents=True)
    python = venv_bin / "python"
    python.symlink_to(sys.executable)
    settings = RunSettings(
        shell_command='echo "$MODEL_PYTHON" > "$OUTPUT_DIR/python"; command -v python > "$OUTPUT_DIR/which"',  # noqa: E501
        python_candidates=[str(tmp_path / "missing" / "python"), str(python), "python3"],
    )

    run(settings, paths)

    assert (paths.output_dir / "python").read_text().strip() == str(python)
    assert (paths.output_dir / "which").read_text().strip() == str(python)


def test_a_bare_python_candidate_is_looked_up_on_the_path(paths: RunPaths) -> None:
    command = build_command(RunSettings(command=["x"], python_candidates=["sh"]), paths)

    assert command.env["MODEL_PYTHON"] == shutil.which("sh")
    assert "PATH" not in command.env


def test_without_any_python_model_python_is_not_set(paths: RunPaths, tmp_path: Path) -> None:
    command = build_command(
        RunSettings(command=["x"], python_candidates=[str(tmp_path / "none")]), paths
    )

    assert "MODEL_PYTHON" not in command.env


def test_a_non_zero_exit_code_fails_the_run_with_the_code(paths: RunPaths) -> None:
    with pytest.raises(ModelCommandFailed, match="exited with code 7"):
        run(RunSettings(shell_command="exit 7"), paths)


def test_a_model_killed_by_a_signal_says_which(paths: RunPaths) -> None:
    with pytest.raises(ModelCommandFailed, match="was killed by SIGKILL"):
        run(RunSettings(shell_command="kill -KILL $$"), paths)


def test_stdout_and_stderr_are_logged_and_the_first_line_is_timed(
    paths: RunPaths, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="instance_agent.model")
    first: list[float] = []

    run_model(
        build_command(RunSettings(shell_command="sleep 0.3; echo out; echo err >&2"), paths),
        30,
        on_first_output=first.append,
    )

    lines = [r.getMessage() for r in caplog.records if r.name == "instance_agent.model"]
    assert "out" in lines
    assert "err" in lines
    assert len(first) == 1
    assert 0.3 <= first[0] < 10


def test_the_example_model_runs_under_the_contract(paths: RunPaths) -> None:
    shutil.copytree(EXAMPLE_MODEL, paths.model_dir, dirs_exist_ok=True)
    paths.task_input.write_text(json.dumps({"parameters": {"rows": [[1, 2, 3]]}}))

    run(RunSettings(python_candidates=[sys.executable]), paths)

    # 0.5 + 0.25*1 - 1.0*2 + 2.0*3
    assert (paths.output_dir / "predictions.csv").read_text().splitlines() == [
        "row,score",
        "0,4.75",
    ]
    assert json.loads((paths.output_dir / "metrics.json").read_text()) == {"rows": 1}


def test_the_example_model_refuses_a_row_of_the_wrong_width(paths: RunPaths) -> None:
    shutil.copytree(EXAMPLE_MODEL, paths.model_dir, dirs_exist_ok=True)
    paths.task_input.write_text(json.dumps({"parameters": {"rows": [[1, 2]]}}))

    with pytest.raises(ModelCommandFailed, match="exited with code 2"):
        run(RunSettings(python_candidates=[sys.executable]), paths)
