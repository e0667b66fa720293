"""reconciler.toml.sample: every setting, commented out, with its true default."""

from __future__ import annotations

import re
from dataclasses import asdict, fields
from pathlib import Path

from reconciler import settings as settings_module
from reconciler.settings import (
    DEFAULT_PATHS,
    ETC_DIRS,
    STATE_DIRS,
    Settings,
    load_settings,
    platform_name,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "reconciler.toml.sample"
# A setting line: "#key = value", no space after the hash (prose comments have one).
SETTING = re.compile(r"^#([a-z_]+) = (.+)$", re.M)

#: The defaults the sample shows: the FreeBSD ones (the port installs it).
FREEBSD = {
    "work_dir": STATE_DIRS["freebsd"],
    "allowed_signers": f"{ETC_DIRS['freebsd']}/allowed_signers",
}


def _setting_names() -> list[str]:
    return [f.name for f in fields(Settings) if f.name != "source"]


def test_the_sample_as_shipped_loads_as_the_defaults() -> None:
    loaded = load_settings(SAMPLE)
    assert loaded == Settings(source=str(SAMPLE))


def test_the_sample_names_every_setting_once() -> None:
    named = [m.group(1) for m in SETTING.finditer(SAMPLE.read_text())]
    assert sorted(named) == sorted(_setting_names())
    # ...and every one the loader accepts (a setting added to one but not the other fails).
    assert sorted(settings_module._TYPES) == sorted(_setting_names())


def test_every_line_uncommented_gives_the_freebsd_defaults(tmp_path: Path) -> None:
    text = SETTING.sub(lambda m: f"{m.group(1)} = {m.group(2)}", SAMPLE.read_text())
    uncommented = tmp_path / "reconciler.toml"
    uncommented.write_text(text)
    loaded = asdict(load_settings(uncommented))
    expected = asdict(Settings()) | FREEBSD | {"source": str(uncommented)}
    assert loaded == expected


def test_uncommenting_really_sets_the_values(tmp_path: Path) -> None:
    # The check above compares values read from the lines, so a wrong default fails it.
    text = SAMPLE.read_text().replace("#parallel = 16", "#parallel = 8")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(SETTING.sub(lambda m: f"{m.group(1)} = {m.group(2)}", text))
    assert load_settings(wrong).parallel == 8 != Settings().parallel


def test_defaults_follow_the_platform() -> None:
    assert platform_name("freebsd14") == "freebsd"
    assert platform_name("linux") == "linux"
    assert STATE_DIRS == {"freebsd": "/var/db/reconciler", "linux": "/var/lib/reconciler"}
    here = platform_name()
    assert Settings().work_dir == STATE_DIRS[here]
    assert Settings().allowed_signers == f"{ETC_DIRS[here]}/allowed_signers"
    # The signers file sits beside the settings file each platform looks for.
    freebsd_settings, linux_settings = DEFAULT_PATHS
    assert Path(ETC_DIRS["freebsd"]) == freebsd_settings.parent / "reconciler"
    assert Path(ETC_DIRS["linux"]) == linux_settings.parent
    # An explicitly empty work_dir is the per-user directory, for running by hand.
    assert Settings(work_dir="").work_path.name == "reconciler"
    assert Settings(work_dir="").work_path != Path(STATE_DIRS[here])
