"""The observability settings: each one checked when the file is read, with a clear error."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.errors import SettingsError
from reconciler.settings import load_settings
from reconciler.web.server import StatusApp, StatusServer
from tests.observe.helpers import ROOT


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "reconciler.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_the_observability_settings_are_read(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        'status_listen = "127.0.0.1:8440"\n'
        'commit_url = "https://git.example.org/ops/fleet/commit/{commit}"\n'
        'webhooks = ["https://hooks.example.org/a", "http://127.0.0.1:9000/b"]\n'
        'webhook_secret = "k"\nnotify_command = ["/usr/local/bin/page", "--team", "ops"]\n'
        "notify_attempts = 3\nnotify_timeout = 2.5\n",
    )
    assert settings.status_listen == "127.0.0.1:8440"
    assert settings.webhooks == ("https://hooks.example.org/a", "http://127.0.0.1:9000/b")
    assert settings.notify_command == ("/usr/local/bin/page", "--team", "ops")
    assert (settings.notify_attempts, settings.notify_timeout) == (3, 2.5)
    assert _load(tmp_path, "").status_listen == ""  # off unless set


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('status_listen = "8440"', "expected HOST:PORT"),
        ('status_listen = "127.0.0.1:99999"', "port '99999'"),
        ('status_listen = "::1:8440"', "brackets"),
        ('status_listen = "not a host:80"', "neither an IP address nor a host name"),
        ("status_listen = 8440", "must be str"),
        ('commit_url = "https://git.example.org/commit/"', "{commit}"),
        ('commit_url = "https://x/{commit}/{branch}"', "no other field"),
        ('commit_url = "ftp://x/{commit}"', "http:// or https://"),
        ('webhooks = ["https://x/hook"]', "webhooks need webhook_secret"),
        ('webhooks = ["file:///etc/passwd"]\nwebhook_secret = "k"', "not an http://"),
        ('webhooks = "https://x/hook"', "must be list"),
        ('notify_command = ["page-oncall"]', "absolute path"),
        ("notify_command = [1, 2]", "list of strings"),
        ("notify_attempts = 0", "from 1 to 100"),
        ("notify_timeout = 0", "more than 0 seconds"),
        ('status_listn = "127.0.0.1:8440"', "unknown setting 'status_listn'"),
    ],
)
def test_a_wrong_value_is_an_error_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, text + "\n")
    assert message in str(caught.value) and "reconciler.toml" in str(caught.value)


def test_an_address_in_use_is_a_settings_error_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = StatusServer(f"127.0.0.1:{port}", StatusApp(lambda: None))  # type: ignore[arg-type, return-value]
        with pytest.raises(SettingsError, match=f"127.0.0.1:{port}: cannot listen"):
            server.start()


def test_the_daemon_refuses_to_start_on_an_address_in_use(tmp_path: Path) -> None:
    repo = tmp_path / "config"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=A", "-c", "user.email=a@b",
                    "commit", "-q", "--allow-empty", "-m", "empty"], check=True)  # fmt: skip
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = tmp_path / "reconciler.toml"
        settings.write_text(
            f'repo = "{repo}"\nwork_dir = "{tmp_path / "work"}"\n'
            f'status_listen = "127.0.0.1:{port}"\n'
        )
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", "run", "--config", str(settings), "--once"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"status_listen 127.0.0.1:{port}: cannot listen" in done.stderr
    assert "Traceback" not in done.stderr
