"""Zip + CSV reading (pure): unsafe names, links, bombs, and label problems, each named."""
import io
import shutil
import subprocess
import tracemalloc
import zipfile

import pytest

from annotations.imagenet import imagenet_class_resolve
from annotations.uploads import (
    ArchiveLimits,
    UploadRejected,
    archive_members,
    labels_parse,
    member_name_problem,
    zip_upload_read,
)
from tests.annotations.zipfiles import csv_bytes, lie_about_size, make_zip, photo_zip, png, tool_zip, writestr_zip

LIMITS = ArchiveLimits(max_members=50, max_member_bytes=5 * 1024 * 1024, max_total_bytes=20 * 1024 * 1024)


def read(data: bytes, labels=None, limits=LIMITS):
    return zip_upload_read(io.BytesIO(data), limits=limits, labels=labels, class_resolve=imagenet_class_resolve)


def rejected(data: bytes, labels=None, limits=LIMITS) -> UploadRejected:
    with pytest.raises(UploadRejected) as info:
        read(data, labels, limits)
    return info.value


@pytest.mark.parametrize(
    "name,why",
    [
        ("../evil.png", "traversal"),
        ("images/../../evil.png", "traversal"),
        ("..\\evil.png", "traversal"),
        ("/etc/evil.png", "absolute"),
        ("\\server\\evil.png", "absolute"),
        ("C:/evil.png", "drive letter"),
        ("c:evil.png", "drive letter"),
    ],
)
def test_unsafe_member_names_are_named(name, why):
    assert why in member_name_problem(name)
    error = rejected(make_zip({name: png(), "labels.csv": csv_bytes(f"{name},1,,")}))
    assert error.field == "archive" and repr(name) in str(error) and why in str(error)


@pytest.mark.parametrize("name", ["a.png", "images/a.png", "./a.png", "deep/er/a b.png", "a..b.png"])
def test_ordinary_names_pass(name):
    assert member_name_problem(name) is None


def test_a_good_upload_reads_every_listed_image():
    upload = read(photo_zip(extra_rows=["images/cat-grey.png,,grey,images/chelsea.png"], extra_members={"images/cat-grey.png": png()}))
    assert [row.file for row in upload.rows] == ["images/chelsea.png", "images/coffee.png", "images/cat-grey.png"]
    assert set(upload.files) == {row.file for row in upload.rows}
    assert upload.rows[2].source == "images/chelsea.png" and upload.rows[2].condition == "grey"
    assert upload.rows[0].class_value == "285" and upload.rows[1].class_value == "espresso"


def test_symbolic_links_are_refused():
    data = make_zip({"a.png": png(), "labels.csv": csv_bytes("a.png,1,,")}, symlinks={"link.png": "/etc/passwd"})
    error = rejected(data)
    assert "'link.png' is a symbolic link" in str(error)


def test_a_compression_bomb_is_refused_before_it_is_read():
    bomb = b"\0" * (3 * 1024 * 1024)  # 3 MiB of zeros deflate to ~3 KB: ratio ~1000
    error = rejected(make_zip({"bomb.bmp": bomb, "labels.csv": csv_bytes("bomb.bmp,1,,")}))
    assert "decompression bomb" in str(error) and "bomb.bmp" in str(error)


def test_member_and_total_size_limits():
    small = ArchiveLimits(max_members=50, max_member_bytes=1000, max_total_bytes=10**6)
    error = rejected(make_zip({"a.png": png(64, 64), "labels.csv": csv_bytes("a.png,1,,")}, deflate=False), limits=small)
    assert "limit per file is 1000" in str(error)
    tight = ArchiveLimits(max_members=50, max_member_bytes=10**6, max_total_bytes=5000)
    members = {f"{i}.png": png(40, 40, seed=i) for i in range(3)}
    error = rejected(make_zip({**members, "labels.csv": csv_bytes(*[f"{i}.png,1,," for i in range(3)])}), limits=tight)
    assert "the limit is 5000" in str(error)
    few = ArchiveLimits(max_members=2)
    error = rejected(make_zip({**members, "labels.csv": csv_bytes(*[f"{i}.png,1,," for i in range(3)])}), limits=few)
    assert "the limit is 2" in str(error)


def test_declared_sizes_that_lie_are_caught_when_reading():
    data = make_zip({"a.png": png(200, 200), "labels.csv": csv_bytes("a.png,1,,")})
    error = rejected(lie_about_size(data, "a.png", 100))
    assert "'a.png'" in str(error) and error.field == "archive"


def test_not_a_zip_and_encrypted_flags():
    assert "not a readable zip" in str(rejected(b"PK\x03\x04 definitely not a zip"))
    assert "not a readable zip" in str(rejected(png()))


def test_desktop_clutter_is_skipped_and_directories_ignored():
    data = make_zip({
        "__MACOSX/._a.png": b"junk", ".DS_Store": b"junk", "pics/._a.png": b"junk", "pics/a.png": png(),
        "labels.csv": csv_bytes("pics/a.png,1,,"),
    })
    assert list(read(data).files) == ["pics/a.png"]


def test_every_image_must_be_listed_and_every_listed_file_present():
    error = rejected(photo_zip(extra_members={"images/extra.png": png()}))
    assert "not listed in the labels CSV: images/extra.png" in str(error)
    error = rejected(photo_zip(extra_rows=["images/chelsa.png,285,,"]))
    assert "labels row 4 (images/chelsa.png): the file is not in the zip" in str(error)
    error = rejected(photo_zip(extra_rows=["chelsea.png,285,,"]))
    assert "did you mean 'images/chelsea.png'?" in str(error)


def test_the_csv_can_come_separately_but_not_twice():
    members = {"a.png": png()}
    assert [r.file for r in read(make_zip(members), labels=csv_bytes("a.png,1,,")).rows] == ["a.png"]
    error = rejected(make_zip({**members, "labels.csv": csv_bytes("a.png,1,,")}), labels=csv_bytes("a.png,1,,"))
    assert "send one" in str(error)
    assert "exactly one labels CSV" in str(rejected(make_zip(members)))
    two = make_zip({**members, "a.csv": csv_bytes("a.png,1,,"), "b.csv": csv_bytes("a.png,1,,")})
    assert "found 2 (a.csv, b.csv)" in str(rejected(two))


def test_label_problems_are_listed_with_their_rows():
    error = rejected(photo_zip(extra_rows=[
        "images/x.png,rocket ship,original,",
        "images/y.png,1000,,",
        "images/z.png,1,grey,images/z.png",
    ], extra_members={f"images/{n}.png": png(seed=i) for i, n in enumerate("xyz")}))
    text = str(error)
    assert error.field == "labels"
    assert "labels row 4 (images/x.png): unknown ImageNet class name 'rocket ship'" in text
    assert "labels row 5 (images/y.png): ImageNet class index 1000 is outside 0..999" in text
    assert "labels row 6 (images/z.png): an image cannot be its own source" in text


def test_variants_of_variants_and_duplicate_conditions_are_refused():
    extra = {f"images/{n}.png": png(seed=i) for i, n in enumerate("ab")}
    error = rejected(photo_zip(extra_rows=["images/a.png,,grey,images/chelsea.png", "images/b.png,,blur,images/a.png"], extra_members=extra))
    assert "its source 'images/a.png' is itself a variant" in str(error)
    error = rejected(photo_zip(extra_rows=["images/a.png,,grey,images/chelsea.png", "images/b.png,,grey,images/chelsea.png"], extra_members=extra))
    assert "has condition 'grey' already in row 4" in str(error)


def test_csv_header_rules():
    with pytest.raises(UploadRejected, match="unknown column\\(s\\) 'clas'"):
        labels_parse(b"file,clas\na.png,1\n", max_rows=10)
    with pytest.raises(UploadRejected, match="no 'file' column"):
        labels_parse(b"class\n1\n", max_rows=10)
    with pytest.raises(UploadRejected, match="empty"):
        labels_parse(b"", max_rows=10)
    with pytest.raises(UploadRejected, match="not UTF-8"):
        labels_parse("file\nä.png\n".encode("latin-1"), max_rows=10)
    with pytest.raises(UploadRejected, match="lists no files"):
        labels_parse(b"file,class\n\n", max_rows=10)
    with pytest.raises(UploadRejected, match="already listed in row 2"):
        labels_parse(b"file\na.png\na.png\n", max_rows=10)
    with pytest.raises(UploadRejected, match="limit is 1"):
        labels_parse(b"file\na.png\nb.png\n", max_rows=1)


def test_excel_flavours_of_csv():
    semicolons = "\ufeffFile;Class;Condition\r\na.png;tabby;original\r\n".encode()
    (row,) = labels_parse(semicolons, max_rows=10, class_resolve=imagenet_class_resolve)
    assert (row.file, row.class_value, row.condition) == ("a.png", "tabby", "original")


def test_roles_and_known_regions():
    rows = labels_parse(
        b'file,role,known_region\na.png,catch,"10,20,110,120"\nb.png,practice,\nc.png,,\n', max_rows=10
    )
    assert [r.role for r in rows] == ["catch", "practice", "main"]
    assert rows[0].known_region == (10.0, 20.0, 110.0, 120.0) and rows[1].known_region is None
    with pytest.raises(UploadRejected, match="needs its known_region"):
        labels_parse(b"file,role\na.png,catch\n", max_rows=10)
    with pytest.raises(UploadRejected, match="only for rows with role 'catch' or 'practice'"):
        labels_parse(b"file,known_region\na.png,1 2 3 4\n", max_rows=10)
    with pytest.raises(UploadRejected, match="four numbers"):
        labels_parse(b"file,role,known_region\na.png,catch,1 2 3\n", max_rows=10)
    with pytest.raises(UploadRejected, match="role 'bonus' is not one of"):
        labels_parse(b"file,role\na.png,bonus\n", max_rows=10)


def test_member_listing_names_every_problem_at_once():
    data = make_zip({"../a.png": png(), "/b.png": png(), "ok.png": png(), "labels.csv": b"file\nok.png\n"})
    with pytest.raises(UploadRejected) as info:
        archive_members(io.BytesIO(data), limits=LIMITS)
    assert len(info.value.problems) == 2


# --- zips as tools write them (issue 18, item 10) -------------------------------------------------

TOOL_MEMBERS = {"images/a.png": png(seed=1), "images/b.png": png(seed=2), "labels.csv": csv_bytes("images/a.png,1,,", "images/b.png,2,,")}


@pytest.mark.parametrize("build", [
    pytest.param(lambda: writestr_zip(TOOL_MEMBERS), id="python-writestr"),
    pytest.param(lambda: tool_zip(TOOL_MEMBERS, tool="info-zip"), id="info-zip"),
    pytest.param(lambda: tool_zip(TOOL_MEMBERS, tool="finder"), id="macos-finder"),
    pytest.param(lambda: tool_zip(TOOL_MEMBERS, tool="explorer"), id="windows-explorer"),
])
def test_zips_made_by_common_tools_are_read(build):
    upload = read(build())
    assert sorted(upload.files) == ["images/a.png", "images/b.png"]
    assert upload.files["images/a.png"] == TOOL_MEMBERS["images/a.png"]


@pytest.mark.skipif(shutil.which("zip") is None, reason="the zip command is not installed")
def test_a_zip_made_by_the_zip_command_is_read(tmp_path):
    for name, data in TOOL_MEMBERS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    subprocess.run(["zip", "-qr", "upload.zip", "images", "labels.csv"], cwd=tmp_path, check=True)
    assert sorted(read((tmp_path / "upload.zip").read_bytes()).files) == ["images/a.png", "images/b.png"]


@pytest.mark.parametrize("mode,why", [
    pytest.param(0o120777, "'x.png' is a symbolic link", id="symlink"),
    pytest.param(0o040755, "'x.png' is a directory entry", id="directory"),
    pytest.param(0o020644, "'x.png' is not a regular file (a device", id="character-device"),
    pytest.param(0o060644, "'x.png' is not a regular file (a device", id="block-device"),
    pytest.param(0o010644, "'x.png' is not a regular file (a device", id="fifo"),
    pytest.param(0o140644, "'x.png' is not a regular file (a device", id="socket"),
])
def test_only_links_directories_and_devices_are_refused_by_type(mode, why):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("x.png")
        info.create_system, info.external_attr = 3, mode << 16
        archive.writestr(info, png())
        archive.writestr("labels.csv", csv_bytes("x.png,1,,"))
    error = rejected(buffer.getvalue())
    assert why in str(error) and error.field == "archive"


# --- zip bombs of many small members (issue 18, item 7) --------------------------------------------


def _peak_bytes(work) -> tuple[object, int]:
    """What `work()` raised (or returned), and the peak of Python allocations while it ran."""
    tracemalloc.start()
    try:
        try:
            outcome = work()
        except UploadRejected as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_many_small_members_of_zeros_are_refused_before_any_is_decompressed():
    zeros = b"\0" * (1024 * 1024 - 1)  # just under the per-member ratio threshold
    data = make_zip({**{f"{i}.bmp": zeros for i in range(100)}, "labels.csv": csv_bytes(*(f"{i}.bmp,1,," for i in range(100)))})
    assert len(data) < 200_000
    outcome, peak = _peak_bytes(lambda: archive_members(io.BytesIO(data), limits=ArchiveLimits()))
    assert isinstance(outcome, UploadRejected), "100 MiB of zeros from a 110 KB upload must be refused"
    assert "expand" in str(outcome) and "in all" in str(outcome) and "decompression bomb" in str(outcome)
    assert peak < 5 * 1024 * 1024, f"{peak} bytes allocated: members were decompressed before the refusal"


def test_a_few_small_compressible_files_are_not_a_bomb():
    text = b"file,class\n" + b"".join(f"images/{i:04d}.png,285\n".encode() for i in range(2000))  # compresses ~20x
    members = archive_members(io.BytesIO(make_zip({"labels.csv": text, "blank.bmp": b"\0" * 50_000})), limits=ArchiveLimits())
    assert members["labels.csv"] == text and len(members["blank.bmp"]) == 50_000


def test_a_member_that_lies_about_its_size_is_stopped_at_the_declared_size():
    data = lie_about_size(make_zip({"a.bmp": b"\0" * (64 * 1024 * 1024), "labels.csv": csv_bytes("a.bmp,1,,")}), "a.bmp", 1000)
    outcome, peak = _peak_bytes(lambda: archive_members(io.BytesIO(data), limits=ArchiveLimits()))
    assert isinstance(outcome, UploadRejected) and "'a.bmp'" in str(outcome)
    assert peak < 5 * 1024 * 1024, f"{peak} bytes allocated reading a member declared as 1000 bytes"
