"""Favourites and collections: persistence, ordering, names, limits, and two processes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from timbre.collections_db import FAVOURITES, MAX_ITEMS_PER_CALL, Collections
from timbre.errors import ConflictError, InvalidRequestError, NotFoundError


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_favourites_exist_from_the_start_and_cannot_be_deleted(tmp_path: Path) -> None:
    db = Collections.in_data_dir(tmp_path)
    assert [c.name for c in db.list_all()] == [FAVOURITES]
    with pytest.raises(ConflictError, match="cannot be deleted"):
        db.delete("Favourites")


def test_items_keep_the_order_they_were_added_and_survive_a_reopen(tmp_path: Path) -> None:
    a, b, c = ids(3)
    db = Collections.in_data_dir(tmp_path)
    db.add(FAVOURITES, [b, a], path_hints=["/lib/b.wav", "/lib/a.wav"])
    db.add(FAVOURITES, [a, c])  # a is already there: it keeps its place
    db.close()
    again = Collections.in_data_dir(tmp_path)
    items = again.items(FAVOURITES)
    assert [i.id for i in items] == [b, a, c]
    assert [i.path_hint for i in items] == ["/lib/b.wav", "/lib/a.wav", None]
    assert again.get(FAVOURITES).count == 3
    again.remove(FAVOURITES, [a, str(uuid.uuid4())])
    assert [i.id for i in again.items(FAVOURITES)] == [b, c]


def test_names_are_one_regardless_of_case_and_shown_as_first_written(tmp_path: Path) -> None:
    db = Collections.in_data_dir(tmp_path)
    (x,) = ids(1)
    db.create("Dark Kicks")
    with pytest.raises(ConflictError):
        db.create("dark kicks")
    info = db.add("DARK KICKS", [x], create=False)
    assert info.name == "Dark Kicks" and info.count == 1
    assert [c.name for c in db.list_all()] == [FAVOURITES, "Dark Kicks"]
    assert db.memberships([x, *ids(1)]) == {x: ["Dark Kicks"]}
    db.delete("dark kicks")
    with pytest.raises(NotFoundError):
        db.items("Dark Kicks")


def test_adding_to_a_missing_collection_creates_it_unless_told_not_to(tmp_path: Path) -> None:
    db = Collections.in_data_dir(tmp_path)
    with pytest.raises(NotFoundError):
        db.add("Pads", ids(1), create=False)
    assert db.add("Pads", ids(2)).count == 2


@pytest.mark.parametrize("name", ["", "   ", "a/b", "back\\slash", "tab\there", "x" * 65])
def test_unusable_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidRequestError, match="collection name"):
        Collections.in_data_dir(tmp_path).create(name)


def test_bad_ids_and_oversized_calls_are_refused(tmp_path: Path) -> None:
    db = Collections.in_data_dir(tmp_path)
    with pytest.raises(InvalidRequestError, match="UUIDs"):
        db.add(FAVOURITES, ["../../etc/passwd"])
    with pytest.raises(InvalidRequestError, match="at most"):
        db.add(FAVOURITES, ids(MAX_ITEMS_PER_CALL + 1))
    with pytest.raises(InvalidRequestError, match="path hint"):
        db.add(FAVOURITES, ids(2), path_hints=["/a.wav"])
    assert db.get(FAVOURITES).count == 0


def test_another_process_sees_what_this_one_wrote(tmp_path: Path) -> None:
    db = Collections.in_data_dir(tmp_path)
    (x,) = ids(1)
    code = (
        "import sys; from pathlib import Path; from timbre.collections_db import Collections; "
        "c = Collections.in_data_dir(Path(sys.argv[1])); c.add('From Child', [sys.argv[2]])"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path), x], check=True)
    assert [i.id for i in db.items("from child")] == [x]
