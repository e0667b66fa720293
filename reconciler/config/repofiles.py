"""Read the files of a config repo: a directory on disk, or one commit of a git repository.

Both readers answer the same three questions (which names are under a
directory, how big is a file, what are its bytes), so the loader does not care
where the files come from. The commit reader uses GitPython's object store, so
no work tree is checked out or touched. GitPython's exceptions become
:class:`RepoError` here.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import git

from reconciler.errors import RepoError


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "file", "dir", "symlink", "other"
    size: int


class Reader(Protocol):
    def entry(self, path: str) -> Entry | None:
        """The file or directory at ``path`` (relative, '/'-separated), or None."""
        ...

    def listdir(self, path: str) -> list[Entry]:
        """Entries of the directory ``path`` ("" for the root), sorted by name."""
        ...

    def read(self, path: str) -> bytes:
        """The bytes of the regular file ``path``."""
        ...


class DirectoryReader:
    """The repo as it is on disk: a directory or a git work tree, uncommitted edits included."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _entry(self, path: Path) -> Entry | None:
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RepoError(f"{path}: cannot read: {exc.strerror}") from exc
        if stat.S_ISLNK(info.st_mode):
            kind = "symlink"
        elif stat.S_ISDIR(info.st_mode):
            kind = "dir"
        elif stat.S_ISREG(info.st_mode):
            kind = "file"
        else:
            kind = "other"
        return Entry(path.name, kind, info.st_size)

    def entry(self, path: str) -> Entry | None:
        return self._entry(self.root / path)

    def listdir(self, path: str) -> list[Entry]:
        try:
            children = sorted((self.root / path).iterdir())
        except OSError as exc:
            raise RepoError(f"{self.root / path}: cannot list: {exc.strerror}") from exc
        return [e for e in (self._entry(child) for child in children) if e is not None]

    def read(self, path: str) -> bytes:
        try:
            return (self.root / path).read_bytes()
        except OSError as exc:
            raise RepoError(f"{self.root / path}: cannot read: {exc.strerror}") from exc


_GIT_KINDS = {0o040000: "dir", 0o100644: "file", 0o100755: "file", 0o120000: "symlink"}


class CommitReader:
    """The files of one commit, read from the object store."""

    def __init__(self, commit: git.Commit) -> None:
        self.commit = commit
        self.tree = commit.tree

    def _object(self, path: str) -> git.Tree | git.Blob | None:
        if not path:
            return self.tree
        try:
            found = self.tree / path
        except KeyError:
            return None
        return found if isinstance(found, git.Tree | git.Blob) else None

    @staticmethod
    def _as_entry(obj: git.Tree | git.Blob) -> Entry:
        kind = _GIT_KINDS.get(obj.mode, "other")
        size = obj.size if isinstance(obj, git.Blob) else 0
        return Entry(obj.name, kind, size)

    def entry(self, path: str) -> Entry | None:
        obj = self._object(path)
        return self._as_entry(obj) if obj is not None and path else None

    def listdir(self, path: str) -> list[Entry]:
        obj = self._object(path)
        if not isinstance(obj, git.Tree):
            return []
        children = [*obj.trees, *obj.blobs]
        return sorted((self._as_entry(child) for child in children), key=lambda e: e.name)

    def read(self, path: str) -> bytes:
        obj = self._object(path)
        if not isinstance(obj, git.Blob):
            raise RepoError(f"{path}: not a file in commit {self.commit.hexsha}")
        data: bytes = obj.data_stream.read()
        return data


def open_repo(repo: str | Path) -> git.Repo:
    """The git repository at ``repo`` (a work tree or a bare repository)."""
    path = Path(repo)
    if not path.exists():
        raise RepoError(f"{repo}: no such directory")
    try:
        return git.Repo(path, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise RepoError(f"{repo}: not a git repository") from exc
    except git.GitError as exc:
        raise RepoError(f"{repo}: cannot open the git repository: {exc}") from exc


def find_commit(repo: str | Path, rev: str) -> git.Commit:
    """The commit ``rev`` names in ``repo``; RepoError when there is none."""
    if not rev or rev.startswith("-") or any(c.isspace() for c in rev):
        raise RepoError(f"{rev!r} is not a revision")
    handle = open_repo(repo)
    try:
        commit = handle.commit(rev)
        _ = commit.tree  # force the object to be read: a bad sha fails here, not later
    except (git.BadName, git.BadObject, ValueError, git.GitError) as exc:
        raise RepoError(f"{repo}: no commit {rev!r}") from exc
    return commit


def resolve_commit(repo: str | Path, rev: str) -> str:
    """The full sha of the commit ``rev`` names in ``repo``."""
    return str(find_commit(repo, rev).hexsha)


def reader_for(repo: str | Path, rev: str | None) -> tuple[Reader, str | None]:
    """A reader for ``repo`` at ``rev`` (None: the directory as it is) and the commit sha read."""
    path = Path(repo)
    if rev is not None:
        commit = find_commit(repo, rev)
        return CommitReader(commit), str(commit.hexsha)
    if not path.is_dir():
        raise RepoError(f"{repo}: no such directory")
    if (path / "HEAD").is_file() and (path / "objects").is_dir() and not (path / ".git").exists():
        # A bare repository has no files on disk to read: read its HEAD commit.
        try:
            commit = open_repo(repo).head.commit
        except (ValueError, git.GitError) as exc:
            raise RepoError(f"{repo}: bare repository without commits") from exc
        return CommitReader(commit), str(commit.hexsha)
    return DirectoryReader(path), None
