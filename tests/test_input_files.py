"""Tests of input_files.py: decoding errors that name file, line, byte and flag; GBK; BOMs;
git-lfs pointers; saying what a file is."""

import pytest

import input_files

LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4b9a8ab9cbd8a3e8e8b9a3d1c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0\n"
    b"size 440473133\n"
)


def test_gbk_text_names_line_byte_column_and_the_flag(tmp_path):
    path = tmp_path / "train.csv"
    # "你好" in GBK is c4 e3 ba c3; on line 2 after "ok,".
    path.write_bytes("text,label\nok,你好\n".encode("gbk"))
    with pytest.raises(input_files.InputFileError) as error:
        input_files.read_text(path)
    assert str(error.value) == (
        f"{path}:2: not valid UTF-8 (byte 0xc4 at column 4); if the file is in another "
        "encoding, pass --input_encoding=gbk (Chinese text saved by Excel is usually GBK) or "
        "the file's encoding"
    )
    assert input_files.read_text(path, "gbk") == "text,label\nok,你好\n"


def test_column_counts_characters_not_bytes(tmp_path):
    path = tmp_path / "mixed.txt"
    # Three characters (nine UTF-8 bytes) before the stray byte.
    path.write_bytes("第一行\n北京是".encode() + b"\xff")
    with pytest.raises(input_files.InputFileError, match=r"mixed\.txt:2: .* at column 4\)"):
        input_files.read_text(path)


def test_error_in_another_encoding_names_it(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"ab\x81\n")  # a GBK lead byte with no trail byte
    with pytest.raises(input_files.InputFileError) as error:
        input_files.read_text(path, "GBK")
    assert str(error.value) == (
        f"{path}:1: not valid GBK (byte 0x81 at column 3); pass the file's real encoding as "
        "--input_encoding (the default is utf-8)"
    )


def test_utf8_byte_order_mark_is_dropped_and_not_counted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\n")
    assert input_files.read_text(path) == "text,label\n"
    path.write_bytes(b"\xef\xbb\xbfab\xff\n")
    with pytest.raises(input_files.InputFileError, match=r"excel\.csv:1: .*0xff at column 3\)"):
        input_files.read_text(path)
    # A mark elsewhere than at the start of the file is text.
    assert input_files.decode(b"\xef\xbb\xbfx", "f", first_line=5) == "\ufeffx"


def test_own_hint_and_error_type(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"\xff\n")
    with pytest.raises(KeyError, match="vocab files are UTF-8"):
        input_files.read_text(path, hint="vocab files are UTF-8", error_type=KeyError)


def test_decode_of_one_line_counts_from_its_line_number():
    with pytest.raises(input_files.InputFileError, match=r"^big\.txt:41: .*column 2\)"):
        input_files.decode(b"a\xff", "big.txt", first_line=41)


def test_missing_file_names_what_and_path(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        input_files.read_text(tmp_path / "absent.json", what="SQuAD file")
    assert "SQuAD file not found" in str(error.value) and "absent.json" in str(error.value)


def test_git_lfs_pointer_is_reported_as_one(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_bytes(LFS_POINTER)
    with pytest.raises(input_files.InputFileError) as error:
        input_files.read_text(path, what="BERT config file")
    assert str(error.value).startswith(
        f"{path} is a git-lfs pointer file, not the bert config file itself"
    )
    assert "git lfs pull" in str(error.value)
    with pytest.raises(ValueError, match="not the weights itself"):
        input_files.check_not_lfs_pointer(path, "weights")
    real = tmp_path / "real.bin"
    real.write_bytes(b"\x00" * 200)
    input_files.check_not_lfs_pointer(real, "weights")


def test_describe_content(tmp_path):
    cases = {
        "empty": (b"", "an empty file"),
        "text": (
            "北京 is a city\nsecond line\n".encode(),
            "a text file starting with '北京 is a city'",
        ),
        "lfs": (LFS_POINTER, "a git-lfs pointer file (the real file was never downloaded"),
        "binary": (bytes(range(20)), "a binary file starting with bytes 00 01 02 03"),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert input_files.describe_content(path).startswith(expected), name
    # A character cut by the end of the 512 sniffed bytes is still text.
    cut = tmp_path / "cut"
    cut.write_bytes(b"a" * 511 + "中".encode())
    assert input_files.describe_content(cut).startswith("a text file")


def test_check_encoding_names_the_flag():
    assert input_files.check_encoding("GBK") == "gbk"
    assert input_files.check_encoding("utf8") == "utf-8"
    assert input_files.check_encoding("UTF-8-SIG") == "utf-8"
    assert input_files.check_encoding("gb18030") == "gb18030"
    with pytest.raises(ValueError, match="--input_encoding=klingon: unknown encoding"):
        input_files.check_encoding("klingon")
    with pytest.raises(ValueError, match="--input_encoding=utf-16: not supported"):
        input_files.check_encoding("utf-16")
