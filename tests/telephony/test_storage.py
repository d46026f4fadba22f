"""Client file storage: paths stay inside the client's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringback.client_files import Storage, StorageError


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "storage")


def test_client_dir_is_root_slash_client_id(storage: Storage) -> None:
    assert storage.client_dir(42) == storage.root / "42"


def test_resolve_gives_an_absolute_path_inside_the_client_folder_without_needing_the_file(
    storage: Storage,
) -> None:
    path = storage.resolve(7, "ivr/hello.wav")
    assert path.is_absolute()
    assert path == (storage.root / "7" / "ivr" / "hello.wav").resolve()
    assert not path.exists()


def test_resolve_accepts_dot_components_and_backslashes(storage: Storage) -> None:
    assert storage.resolve(7, "./ivr/./a.wav") == storage.resolve(7, "ivr/a.wav")
    assert storage.resolve(7, "ivr\\a.wav") == storage.resolve(7, "ivr/a.wav")


@pytest.mark.parametrize(
    ("relpath", "problem"),
    [
        ("", "empty storage path"),
        ("   ", "empty storage path"),
        ("/etc/passwd", "is absolute"),
        ("C:\\Windows\\win.ini", "is absolute"),
        ("\\\\server\\share\\a.wav", "is absolute"),
        ("../8/secret.wav", "contains '..'"),
        ("ivr/../../8/secret.wav", "contains '..'"),
        ("ivr\\..\\..\\8\\a.wav", "contains '..'"),
        ("ivr/a\x00.wav", "NUL byte"),
        (".", "names no file"),
    ],
)
def test_resolve_refuses_paths_that_could_leave_the_client_folder(
    storage: Storage, relpath: str, problem: str
) -> None:
    with pytest.raises(StorageError, match=problem):
        storage.resolve(7, relpath)


def test_resolve_refuses_a_symlink_leading_outside_the_client_folder(
    storage: Storage, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.wav").write_bytes(b"x")
    storage.client_dir(7).mkdir(parents=True)
    (storage.client_dir(7) / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match="leads outside the client's folder"):
        storage.resolve(7, "link/secret.wav")


def test_resolve_follows_a_symlink_that_stays_inside(storage: Storage) -> None:
    target = storage.write_bytes(7, "audio/real.wav", b"x")
    (storage.client_dir(7) / "alias.wav").symlink_to(target)
    assert storage.resolve(7, "alias.wav") == target


def test_another_clients_files_are_out_of_reach(storage: Storage) -> None:
    storage.write_bytes(8, "secret.wav", b"x")
    assert not storage.exists(7, "secret.wav")
    with pytest.raises(StorageError):
        storage.resolve(7, "../8/secret.wav")


def test_negative_client_id_is_refused(storage: Storage) -> None:
    with pytest.raises(StorageError, match="invalid client id"):
        storage.client_dir(-1)


def test_write_bytes_creates_folders_and_read_text_reads_it_back(storage: Storage) -> None:
    path = storage.write_bytes(3, "ivr/menus/main.xml", "<IVR/>é".encode())
    assert path == storage.resolve(3, "ivr/menus/main.xml")
    assert storage.exists(3, "ivr/menus/main.xml")
    assert storage.read_text(3, "ivr/menus/main.xml") == "<IVR/>é"
    storage.write_bytes(3, "ivr/menus/main.xml", b"<Response/>")
    assert storage.read_text(3, "ivr/menus/main.xml") == "<Response/>"
    assert [p.name for p in path.parent.iterdir()] == ["main.xml"]  # no temporary file left


def test_exists_is_false_for_missing_files_and_folders(storage: Storage) -> None:
    storage.write_bytes(3, "ivr/a.wav", b"x")
    assert not storage.exists(3, "ivr/b.wav")
    assert not storage.exists(3, "ivr")


def test_read_text_of_a_missing_file_says_it_does_not_exist(storage: Storage) -> None:
    with pytest.raises(StorageError, match=r"File ivr/none\.xml doesn't exist"):
        storage.read_text(3, "ivr/none.xml")


def test_read_text_refuses_files_over_the_size_limit_and_bad_utf8(storage: Storage) -> None:
    storage.write_bytes(3, "big.xml", b"x" * 101)
    with pytest.raises(StorageError, match="larger than 100 bytes"):
        storage.read_text(3, "big.xml", max_bytes=100)
    storage.write_bytes(3, "latin1.xml", b"\xe9t\xe9")
    with pytest.raises(StorageError, match="not valid utf-8"):
        storage.read_text(3, "latin1.xml")


def test_a_name_longer_than_the_file_system_holds_is_refused_not_an_error(
    storage: Storage,
) -> None:
    with pytest.raises(StorageError, match="longer than 255 bytes"):
        storage.exists(1, "0" * 1000)
    with pytest.raises(StorageError, match="longer than 255 bytes"):
        storage.exists(1, "audio/" + "é" * 128 + ".wav")  # 256 bytes in UTF-8
    assert not storage.exists(1, "a" * 255)  # the longest name is only missing
