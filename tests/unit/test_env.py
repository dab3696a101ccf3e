"""config.env: typed environment readers fail loudly on bad values."""

from __future__ import annotations

import pytest

from config.env import ImproperEnvironment, env_bool, env_float, env_int, env_list, env_paths


def test_defaults_apply_when_unset(monkeypatch):
    monkeypatch.delenv("HC_X", raising=False)
    assert env_int("HC_X", 5) == 5
    assert env_bool("HC_X", True) is True
    assert env_float("HC_X", 0.5) == 0.5
    assert env_list("HC_X", ["a"]) == ["a"]


@pytest.mark.parametrize(
    "reader, raw",
    [
        (env_int, "lots"),
        (env_int, "1.5"),
        (env_bool, "maybe"),
        (env_float, "nan"),
        (env_float, "inf"),
        (env_float, "x"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, reader, raw):
    monkeypatch.setenv("HC_X", raw)
    with pytest.raises(ImproperEnvironment, match="HC_X"):
        reader("HC_X", 1)


def test_minimums_are_enforced(monkeypatch):
    monkeypatch.setenv("HC_X", "0")
    with pytest.raises(ImproperEnvironment, match="minimum"):
        env_int("HC_X", 5, minimum=1)


def test_parsed_values(monkeypatch, tmp_path):
    monkeypatch.setenv("HC_B", "Yes")
    monkeypatch.setenv("HC_L", "a, b,,c")
    monkeypatch.setenv("HC_P", f"{tmp_path}:{tmp_path}/sub")
    assert env_bool("HC_B", False) is True
    assert env_list("HC_L", []) == ["a", "b", "c"]
    assert env_paths("HC_P", []) == [tmp_path.resolve(), (tmp_path / "sub").resolve()]
