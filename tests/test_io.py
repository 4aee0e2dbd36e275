import os

import pytest
import torch

from tsblib import io


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.json"
    io.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert io.read_json(target, "x") == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_csv_round_trip_and_missing_file_names_the_stage(tmp_path):
    io.write_csv(tmp_path / "t.csv", [{"a": 1, "b": 0.5}, {"a": 2}], ["a", "b"])
    assert io.read_csv(tmp_path / "t.csv", "s") == [{"a": "1", "b": "0.5"}, {"a": "2", "b": ""}]
    with pytest.raises(io.StageInputError, match="run the 'evaluate' stage"):
        io.read_csv(tmp_path / "none.csv", "evaluate")


def test_corrupt_json_and_checkpoint_are_reported(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(io.StageInputError, match="corrupt.*rerun the 'summarize' stage"):
        io.read_json(tmp_path / "bad.json", "summarize")
    io.save_checkpoint(tmp_path / "ok.pt", {"w": torch.ones(2)})
    assert torch.equal(io.load_checkpoint(tmp_path / "ok.pt", "train")["w"], torch.ones(2))
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(io.StageInputError, match="corrupt"):
        io.load_checkpoint(tmp_path / "bad.pt", "train")


def test_identical_checkpoints_are_byte_identical_whatever_the_file_name(tmp_path):
    """torch.save names its archive after the file it writes; saving via memory keeps the bytes
    independent of the (random) temporary name, so DVC sees an unchanged output."""
    import torch

    payload = {"state": {"w": torch.arange(6.0).reshape(2, 3)}, "epochs": 3}
    io.save_checkpoint(tmp_path / "a.pt", payload)
    io.save_checkpoint(tmp_path / "b" / "other-name.pt", payload)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b" / "other-name.pt").read_bytes()
    assert torch.equal(io.load_checkpoint(tmp_path / "a.pt", "train")["state"]["w"],
                       payload["state"]["w"])


def test_wall_clock_columns_are_left_out_of_the_hash(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.csv", "b.csv", "c.csv"))
    a.write_text("method,acc,seconds\nnit,0.5,1.25\n")
    b.write_text("method,acc,seconds\nnit,0.5,9.75\n")
    c.write_text("method,acc,seconds\nnit,0.6,1.25\n")
    assert io.table_digest(a) == io.table_digest(b) != io.table_digest(c)
