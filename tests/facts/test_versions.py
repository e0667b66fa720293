"""revision_matches and the forms of uname -v newvers.sh can print (pure)."""

from __future__ import annotations

import pytest

from reconciler.facts.versions import kernel_build_path, parse_uname_v, revision_matches

FULL = "8044904954654c62d8dcd995b7ab7df3a3ed8903"


@pytest.mark.parametrize("abbrev", [FULL[:7], FULL[:9], FULL[:12], FULL, FULL[:12].upper()])
def test_any_abbreviation_git_prints_names_the_revision(abbrev: str) -> None:
    assert revision_matches(abbrev, FULL)


@pytest.mark.parametrize(
    "abbrev", [None, "", FULL[:6], "80449o4", "357188fed10d", FULL[:12] + "-dirty"]
)
def test_too_short_foreign_or_malformed_does_not(abbrev: str | None) -> None:
    assert not revision_matches(abbrev, FULL)


def test_a_word_before_the_hash_is_never_taken_for_it() -> None:
    # A date or a path never reaches the VCS parser: only the words before the ':'.
    text = "FreeBSD 14.2-STABLE #0: Tue Dec 03 16:00:00 UTC 2024 root@b:/usr/obj/8044904954/sys/X"
    assert parse_uname_v(text) is None
    assert kernel_build_path(text) == "/usr/obj/8044904954/sys/X"


def test_svn_and_git_words_together_take_the_git_one() -> None:
    source = parse_uname_v("FreeBSD 13.0-CURRENT #0 r368820+8044904954654: Mon x root@h:/o")
    assert source is None  # git-svn's "r<rev>+<hash>" form is not newvers.sh's git word
    text = "FreeBSD 13.0-CURRENT #0 r368820 main-n244000-8044904954654: x root@h:/o"
    source = parse_uname_v(text)
    assert source is not None and source.abbrev == "8044904954654" and source.count == 244000
