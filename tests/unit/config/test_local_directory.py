"""The local-directory config adapter: files named by id, atomic writes, clear errors."""

from __future__ import annotations

import json

import pytest

from assistant_service.adapters.config.local import LocalDirectoryConfigRepository
from assistant_service.domain.errors import ConfigurationError
from assistant_service.domain.models import AssistantProfile

pytestmark = pytest.mark.anyio

PROFILE = AssistantProfile(id="weather", model="m")


async def test_put_writes_id_dot_json_and_leaves_no_temporary_file(tmp_path):
    repository = LocalDirectoryConfigRepository(tmp_path / "new" / "dir")
    await repository.put(PROFILE)
    assert sorted(p.name for p in (tmp_path / "new" / "dir").iterdir()) == ["weather.json"]
    path = tmp_path / "new" / "dir" / "weather.json"
    assert json.loads(path.read_text())["model"] == "m"
    assert path.stat().st_mode & 0o777 == 0o644


async def test_a_failed_write_keeps_the_old_file(tmp_path):
    repository = LocalDirectoryConfigRepository(tmp_path)
    await repository.put(PROFILE)
    (tmp_path / "weather.json.d").mkdir()
    # Replacing a file by a directory fails: the profile stays whole.
    target = tmp_path / "weather.json"
    target.rename(tmp_path / "saved.json")
    target.mkdir()
    with pytest.raises(OSError, match="directory"):
        await repository.put(AssistantProfile(id="weather", model="other"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "saved.json",
        "weather.json",
        "weather.json.d",
    ]


async def test_a_malformed_file_names_the_file_and_the_field(tmp_path):
    (tmp_path / "weather.json").write_text('{"id": "weather", "model": "m", "tools": [1]}')
    repository = LocalDirectoryConfigRepository(tmp_path)
    for attempt in (repository.get("weather"), repository.list()):
        with pytest.raises(
            ConfigurationError, match=r"weather\.json: tools\[0\]: expected a string"
        ):
            await attempt


async def test_a_file_whose_id_differs_from_its_name_is_refused(tmp_path):
    (tmp_path / "weather.json").write_text('{"id": "other", "model": "m"}')
    with pytest.raises(ConfigurationError, match="does not match the file name"):
        await LocalDirectoryConfigRepository(tmp_path).get("weather")


async def test_list_skips_files_that_cannot_be_profiles(tmp_path):
    repository = LocalDirectoryConfigRepository(tmp_path)
    await repository.put(PROFILE)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".weather.abc.tmp").write_text("{")
    assert await repository.list() == [PROFILE]


async def test_listing_a_missing_directory_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="no such directory"):
        await LocalDirectoryConfigRepository(tmp_path / "typo").list()
