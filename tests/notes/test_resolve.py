"""Resolution of references against real files in a temporary vault, and the safety rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import imgsync.notes.resolve as resolve_module
from imgsync.notes.markdown import ImageRef, find_images
from imgsync.notes.resolve import Resolver, find_root
from imgsync.notes.walk import SKIP_DIRS

PNG = b"\x89PNG\r\n\x1a\n"


def make(path: Path, data: bytes = PNG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    (root / ".obsidian").mkdir(parents=True)
    make(root / "notes" / "note.md", b"")
    return root


def resolve_one(resolver: Resolver, note: Path, text: str):
    result = find_images(text)
    assert result.consistent, result.warnings
    assert len(result.refs) == 1, result.refs
    return resolver.resolve(note, result.refs[0], result.front_matter)


# ------------------------------------------------------------------------------------------------
# the root


def test_find_root_is_the_nearest_vault(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    assert find_root(note) == vault
    assert find_root(vault / "notes") == vault
    assert find_root(vault) == vault


def test_find_root_without_a_vault_is_the_folder_given(tmp_path: Path) -> None:
    note = make(tmp_path / "plain" / "a.md", b"")
    assert find_root(note) == tmp_path / "plain"
    assert find_root(tmp_path / "plain") == tmp_path / "plain"


# ------------------------------------------------------------------------------------------------
# lookup order


@pytest.mark.parametrize(
    ("meant", "others", "markdown"),
    [
        # The file meant and other files of its name, relative to the vault; the reference in
        # notes/note.md.
        pytest.param("notes/img/x.png", ["img/x.png"], "![a](img/x.png)", id="note-folder-first"),
        pytest.param("assets/x.png", [], "![a](assets/x.png)", id="then-the-root"),
        pytest.param(
            "attachments/deep/pasted 1.png", [], "![[pasted 1.png|300]]", id="then-a-unique-name"
        ),
        pytest.param("a/sub/x.png", ["b/other/x.png"], "![[sub/x.png]]", id="a-path-suffix"),
        pytest.param("notes/dup.png", ["b/dup.png"], "![[dup.png]]", id="same-folder-first"),
        pytest.param("notes/a%20b.png", [], "![a](a%20b.png)", id="the-raw-name-too"),
        pytest.param("notes/PHOTO.JPG", [], "![a](PHOTO.JPG)", id="extension-in-capitals"),
        pytest.param("img/z.png", [], "![a](/img/z.png)", id="leading-slash-is-the-root"),
        pytest.param(
            "assets/x.png",
            [],
            "---\ntypora-root-url: ../assets\n---\n![a](/x.png)\n",
            id="typora-root-url-relative-to-the-note",
        ),
        pytest.param(
            "pics/y.png",
            [],
            "---\ntypora-root-url: {vault}/pics\n---\n![a](/y.png)\n",
            id="typora-root-url-absolute",
        ),
    ],
)
def test_a_reference_resolves_to_the_file_meant(
    vault: Path, meant: str, others: list[str], markdown: str
) -> None:
    image = make(vault / meant)
    for other in others:
        make(vault / other)
    note = vault / "notes" / "note.md"
    resolved = resolve_one(Resolver(vault), note, markdown.format(vault=vault))
    assert (resolved.kind, resolved.path, resolved.skip_reason) == ("local", image, None)


def test_ambiguous_names_are_reported_not_guessed(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    make(vault / "a" / "dup.png")
    make(vault / "b" / "dup.png")
    resolved = resolve_one(Resolver(vault), note, "![[dup.png]]")
    assert resolved.path is None
    assert resolved.skip_reason is not None and resolved.skip_reason.startswith("ambiguous: 2")


def test_explicit_relative_paths_are_not_searched_by_name(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    make(vault / "elsewhere" / "x.png")
    resolved = resolve_one(Resolver(vault), note, "![a](./x.png)")
    assert resolved.skip_reason is not None and "not found" in resolved.skip_reason


@pytest.mark.parametrize("folder", sorted(SKIP_DIRS))
def test_the_index_skips_the_folders_the_note_walk_skips(vault: Path, folder: str) -> None:
    note = vault / "notes" / "note.md"
    make(vault / folder / "hidden.png")
    make(vault / "sub" / folder / "deeper.png")
    assert resolve_one(Resolver(vault), note, "![[hidden.png]]").skip_reason == (
        "file not found: 'hidden.png'"
    )
    # A copy there does not make the user's own picture ambiguous.
    own = make(vault / "attachments" / "deeper.png")
    resolved = resolve_one(Resolver(vault), note, "![[deeper.png]]")
    assert (resolved.path, resolved.skip_reason) == (own, None)


def test_the_index_is_built_once_per_resolver(vault: Path, monkeypatch) -> None:
    make(vault / "a" / "one.png")
    make(vault / "b" / "two.png")
    walks = []
    real_walk = os.walk

    def counting_walk(*args, **kwargs):
        walks.append(args)
        return real_walk(*args, **kwargs)

    monkeypatch.setattr(resolve_module.os, "walk", counting_walk)
    resolver = Resolver(vault)
    first = make(vault / "n1.md", b"")
    second = make(vault / "sub" / "n2.md", b"")
    assert resolve_one(resolver, first, "![[one.png]]").skip_reason is None
    assert resolve_one(resolver, second, "![[two.png]]").skip_reason is None
    assert len(walks) == 1


# ------------------------------------------------------------------------------------------------
# decoding for lookup


@pytest.mark.parametrize(
    ("markdown", "file_name"),
    [
        ("![a](my%20pic.png)", "my pic.png"),
        ("![a](<my pic.png>)", "my pic.png"),
        ("![a](%E5%9B%BE%E7%89%87.png)", "图片.png"),
        ("![a](图片.png)", "图片.png"),
        ("![a](a&amp;b.png)", "a&b.png"),
        ("![a](a\\(1\\).png)", "a(1).png"),
        ("![a](100%25.png)", "100%.png"),
        ("![a](x.png?raw=true)", "x.png"),
        ('<img src="a&amp;b%20c.png">', "a&b c.png"),
        ("![a](img\\x.png)", "img/x.png"),  # a Windows-style relative path
    ],
)
def test_decoded_names(vault: Path, markdown: str, file_name: str) -> None:
    note = vault / "notes" / "note.md"
    image = make(vault / "notes" / file_name)
    resolved = resolve_one(Resolver(vault), note, markdown)
    assert (resolved.kind, resolved.path, resolved.skip_reason) == ("local", image, None)


def test_file_urls(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    image = make(vault / "my pics" / "x.png")
    url = "file://" + str(image).replace(" ", "%20")
    resolved = resolve_one(Resolver(vault), note, f"![a]({url})")
    assert (resolved.path, resolved.skip_reason) == (image, None)
    resolved = resolve_one(Resolver(vault), note, f"![a](<file://localhost{image.as_posix()}>)")
    assert (resolved.path, resolved.skip_reason) == (image, None)
    remote_host = resolve_one(Resolver(vault), note, "![a](file://server/share/x.png)")
    assert remote_host.path is None and remote_host.skip_reason is not None


@pytest.mark.skipif(os.name == "nt", reason="Windows paths resolve on Windows")
@pytest.mark.parametrize(
    "markdown", ["![a](C:\\pics\\a.png)", "![a](<C:\\My Pics\\a.png>)", "![a](file:///C:/x.png)"]
)
def test_windows_paths_on_posix_are_reported(vault: Path, markdown: str) -> None:
    resolved = resolve_one(Resolver(vault), vault / "notes" / "note.md", markdown)
    assert resolved.kind == "local" and resolved.path is None
    assert resolved.skip_reason is not None
    assert "Windows path" in resolved.skip_reason and "not found" in resolved.skip_reason


# ------------------------------------------------------------------------------------------------
# safety: nothing outside the root, nothing that is not an image


def test_a_file_outside_the_root_is_skipped(vault: Path, tmp_path: Path) -> None:
    secret = make(tmp_path / "outside" / "secret.png")
    note = vault / "notes" / "note.md"
    resolved = resolve_one(Resolver(vault), note, f"![a]({secret})")
    assert resolved.skip_reason is not None and "outside the root" in resolved.skip_reason
    allowed = resolve_one(Resolver(vault, allow_outside_root=True), note, f"![a]({secret})")
    assert (allowed.path, allowed.skip_reason) == (secret, None)


def test_dot_dot_out_of_the_root_is_skipped(vault: Path, tmp_path: Path) -> None:
    make(tmp_path / "escape.png")
    resolved = resolve_one(Resolver(vault), vault / "notes" / "note.md", "![a](../../escape.png)")
    assert resolved.skip_reason is not None and "outside the root" in resolved.skip_reason


def test_etc_passwd_never_leaks(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    for text in ("![a](/etc/passwd)", "![a](file:///etc/passwd)", "<img src='/etc/passwd'>"):
        resolved = resolve_one(Resolver(vault), note, text)
        assert resolved.skip_reason is not None, text
    if Path("/etc/passwd").is_file():
        resolved = resolve_one(Resolver(vault), note, "![a](/etc/passwd)")
        assert "outside the root" in (resolved.skip_reason or "")


def test_home_ssh_key_never_leaks(vault: Path, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    make(home / ".ssh" / "id_rsa", b"-----BEGIN OPENSSH PRIVATE KEY-----")
    make(home / ".ssh" / "id_rsa.png", b"-----BEGIN OPENSSH PRIVATE KEY-----")
    monkeypatch.setenv("HOME", str(home))
    note = vault / "notes" / "note.md"
    for text in ("![a](~/.ssh/id_rsa)", "![a](~/.ssh/id_rsa.png)", f"![a]({home}/.ssh/id_rsa.png)"):
        resolved = resolve_one(Resolver(vault), note, text)
        assert resolved.skip_reason is not None, text


def test_a_symlink_inside_the_root_to_a_file_outside_is_outside(
    vault: Path, tmp_path: Path
) -> None:
    secret = make(tmp_path / "outside" / "secret.png")
    link = vault / "notes" / "innocent.png"
    link.symlink_to(secret)
    resolved = resolve_one(Resolver(vault), vault / "notes" / "note.md", "![a](innocent.png)")
    assert resolved.skip_reason is not None and "outside the root" in resolved.skip_reason
    assert resolved.path == secret


def test_a_symlink_inside_the_root_is_resolved(vault: Path) -> None:
    image = make(vault / "store" / "real.png")
    (vault / "notes" / "alias.png").symlink_to(image)
    resolved = resolve_one(Resolver(vault), vault / "notes" / "note.md", "![a](alias.png)")
    assert (resolved.path, resolved.skip_reason) == (image, None)


def test_one_notes_images_behind_a_symlinked_folder_each_resolve_as_their_own_file(
    vault: Path, tmp_path: Path
) -> None:
    # The folder's real path is looked up once for the note's images; a file in it that is itself
    # a link still leads where it points, inside the root or out.
    real_folder = vault / "store"
    kept = make(real_folder / "kept.png")
    secret = make(tmp_path / "outside" / "secret.png")
    (real_folder / "leak.png").symlink_to(secret)
    (real_folder / "alias.png").symlink_to(kept)
    (vault / "notes" / "pics").symlink_to(real_folder)
    text = "![a](pics/kept.png) ![b](pics/leak.png) ![c](pics/alias.png) ![d](../store/kept.png)"
    found = find_images(text)
    resolved = Resolver(vault).resolve_all(vault / "notes" / "note.md", found.refs)
    assert [r.path for r in resolved] == [kept, secret, kept, kept]
    assert [r.skip_reason is None for r in resolved] == [True, False, True, True]
    assert "outside the root" in (resolved[1].skip_reason or "")


@pytest.mark.parametrize(
    "written",
    ["a/img.png", "a/link.png", "b/img.png", "a/../a/img.png", "a/..", "a/loop.png", "a/gone.png"],
)
def test_real_path_answers_as_path_resolve_does(tmp_path: Path, written: str) -> None:
    make(tmp_path / "a" / "img.png")
    (tmp_path / "a" / "link.png").symlink_to(tmp_path / "a" / "img.png")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "loop.png").symlink_to(tmp_path / "a" / "loop.png")
    path = tmp_path / written
    try:
        expected: object = path.resolve(strict=True)
    except (OSError, RuntimeError):
        expected = OSError
    memo: dict[str, str] = {}
    for _ in range(2):  # looked up, then answered from the folder's memo
        try:
            got: object = resolve_module._real_path(path, memo)
        except (OSError, RuntimeError):
            got = OSError
        assert got == expected


def test_a_symlink_to_a_non_image_is_not_an_image(vault: Path) -> None:
    make(vault / "private.txt", b"secret")
    (vault / "notes" / "pic.png").symlink_to(vault / "private.txt")
    resolved = resolve_one(Resolver(vault), vault / "notes" / "note.md", "![a](pic.png)")
    assert resolved.skip_reason is not None and "not an image" in resolved.skip_reason


def test_non_images_are_not_uploaded(vault: Path) -> None:
    make(vault / "notes" / "data.csv", b"a,b")
    resolved = resolve_one(Resolver(vault), vault / "notes" / "note.md", "![a](data.csv)")
    assert resolved.skip_reason is not None and "not an image" in resolved.skip_reason


def test_a_folder_is_not_a_file(vault: Path) -> None:
    (vault / "notes" / "dir.png").mkdir()
    resolved = resolve_one(Resolver(vault), vault / "notes" / "note.md", "![a](dir.png)")
    assert resolved.skip_reason == "file not found: 'dir.png'"


# ------------------------------------------------------------------------------------------------
# remote, hosted, data, empty


def test_remote_urls(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    remote = resolve_one(Resolver(vault), note, "![a](https://example.com/r.png)")
    assert (remote.kind, remote.url, remote.skip_reason) == (
        "remote",
        "https://example.com/r.png",
        None,
    )
    scheme_relative = resolve_one(Resolver(vault), note, "![a](//cdn.example.com/s.png)")
    assert (scheme_relative.kind, scheme_relative.url) == (
        "remote",
        "https://cdn.example.com/s.png",
    )
    other = resolve_one(Resolver(vault), note, "![a](ftp://example.com/r.png)")
    assert other.kind == "remote" and "unsupported URL scheme" in (other.skip_reason or "")


def test_hosted_urls_are_recognised(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    resolver = Resolver(vault, hosted_prefixes=["https://vip.123pan.cn/1814/"])
    hosted = resolve_one(resolver, note, "![a](http://VIP.123pan.cn/1814/imgsync/a.png)")
    assert (hosted.kind, hosted.skip_reason) == ("hosted", "already on the image bed")
    elsewhere = resolve_one(resolver, note, "![a](https://vip.123pan.cn/9999/a.png)")
    assert (elsewhere.kind, elsewhere.skip_reason) == ("remote", None)


def test_data_uris_are_skipped_unless_asked(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    text = "![d](data:image/png;base64,iVBORw0KGgo=)"
    skipped = resolve_one(Resolver(vault), note, text)
    assert skipped.kind == "data" and skipped.skip_reason is not None
    allowed = resolve_one(Resolver(vault, allow_data=True), note, text)
    assert (allowed.kind, allowed.url, allowed.skip_reason) == (
        "data",
        "data:image/png;base64,iVBORw0KGgo=",
        None,
    )


def test_empty_destinations_are_skipped(vault: Path) -> None:
    note = vault / "notes" / "note.md"
    for text in ("![a]()", "![a](<>)", '<img src="">'):
        resolved = resolve_one(Resolver(vault), note, text)
        assert resolved.skip_reason is not None and "empty" in resolved.skip_reason


def test_resolve_accepts_a_hand_made_ref(vault: Path) -> None:
    image = make(vault / "notes" / "x.png")
    ref = ImageRef("inline", (5, 10), "x.png", "x.png", "a", 1)
    resolved = Resolver(vault).resolve(vault / "notes" / "note.md", ref)
    assert (resolved.ref, resolved.path) == (ref, image)


# ------------------------------------------------------------------------------------------------
# fragments: looked up without, kept for the new link


@pytest.mark.parametrize(
    ("markdown", "file", "fragment"),
    [
        pytest.param("![[icon.svg#icon]]", "icon.svg", "#icon", id="embed"),
        pytest.param("![[shot.png#interface|300]]", "shot.png", "#interface", id="embed-and-size"),
        pytest.param("| ![[t.png#a\\|300]] |\n|---|\n", "t.png", "#a", id="embed-in-a-table"),
        pytest.param("![a](x.png#outline)", "x.png", "#outline", id="inline"),
        pytest.param('<img src="h.png#icon" width="9">', "h.png", "#icon", id="html"),
        pytest.param("![a](q.png?v=2#icon)", "q.png", "#icon", id="after-a-query"),
        pytest.param("![a](y.png?v=2)", "y.png", "", id="a-query-is-not-kept"),
        pytest.param("![a](plain.png)", "plain.png", "", id="none"),
        pytest.param("![a](c%23.png)", "c#.png", "", id="an-encoded-hash-is-the-name"),
        pytest.param("![[k.png#]]", "k.png", "", id="an-empty-fragment"),
    ],
)
def test_a_fragment_is_not_looked_up_but_kept(
    vault: Path, markdown: str, file: str, fragment: str
) -> None:
    note = vault / "notes" / "note.md"
    make(vault / "notes" / file)
    result = resolve_one(Resolver(vault), note, markdown)
    assert result.skip_reason is None
    assert result.path == (vault / "notes" / file).resolve()
    assert result.fragment == fragment


def test_a_file_named_with_a_hash_is_found_by_its_whole_name(vault: Path) -> None:
    # Lenient editors write such names as they are: the whole name wins, nothing is a fragment.
    note = vault / "notes" / "note.md"
    make(vault / "notes" / "C#.png")
    make(vault / "notes" / "C")
    result = resolve_one(Resolver(vault), note, "![a](C#.png)")
    assert (result.path, result.fragment) == ((vault / "notes" / "C#.png").resolve(), "")


# ------------------------------------------------------------------------------------------------
# a file found elsewhere: the hint names the --root that finds it


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A vault copied without its .obsidian: notes in a subfolder, images in Attachments."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "help"
    make(root / "Attachments" / "status-bar-desktop.png")
    make(root / "Attachments" / "twice.png")
    make(root / "Other" / "twice.png")
    make(root / "User interface" / "Status bar.md", b"")
    return root


@pytest.mark.parametrize(
    ("root_of", "markdown", "suggested"),
    [
        # Synced a subfolder: its folder was the root, the image is beside it.
        pytest.param("User interface", "![[status-bar-desktop.png]]", "help", id="by-name"),
        # A name written from the vault's root, which the vault's folder is not.
        pytest.param("", "![a](/Attachments/status-bar-desktop.png)", "help", id="from-the-root"),
    ],
)
def test_a_file_found_once_elsewhere_in_the_folder_synced_suggests_a_root(
    clone: Path, root_of: str, markdown: str, suggested: str
) -> None:
    note = clone / "User interface" / "Status bar.md"
    top = clone.parent if root_of == "" else clone
    resolver = Resolver(clone / root_of if root_of else top)
    result = find_images(markdown).refs[0]
    resolved = resolver.resolve(note, result, area=top)
    assert resolved.path is None and resolved.missing
    expected = (
        f"there is one at help/Attachments/status-bar-desktop.png: run with --root {suggested}"
    )
    assert expected in (resolved.skip_reason or "")
    assert resolved.skip_reason.startswith("file not found: ")
    # The root suggested does find it.
    again = Resolver(top / suggested if root_of == "" else clone).resolve(note, result, area=top)
    assert again.skip_reason is None and again.path is not None


def test_no_hint_for_a_name_found_twice_a_dot_dot_path_or_no_area(clone: Path) -> None:
    note = clone / "User interface" / "Status bar.md"
    resolver = Resolver(clone / "User interface")

    def reason(markdown: str, area: Path | None) -> str:
        return resolver.resolve(note, find_images(markdown).refs[0], area=area).skip_reason or ""

    assert reason("![[twice.png]]", clone) == "file not found: 'twice.png'"
    assert reason("![a](../Gone/status-bar-desktop.png)", clone).endswith("'")
    assert reason("![[status-bar-desktop.png]]", None) == (
        "file not found: 'status-bar-desktop.png'"
    )
    # Nothing of that name anywhere: no hint.
    assert reason("![[nowhere.png]]", clone) == "file not found: 'nowhere.png'"


def test_the_hint_quotes_a_root_with_a_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    vault = tmp_path / "My Vault"
    make(vault / "img" / "x.png")
    note = make(vault / "sub" / "n.md", b"")
    resolved = Resolver(vault / "sub").resolve(note, find_images("![[x.png]]").refs[0], area=vault)
    assert "run with --root 'My Vault' to find it" in (resolved.skip_reason or "")
