"""The closing table of a run names what each figure is."""

from resattn.engine.logger import result_table


def test_result_table_names_the_weights_and_tta():
    summary = {"train_acc": 0.9, "val_acc": 0.95, "test_acc": 0.931, "train_time_s": 125,
               "eval_weights": "ema", "tta": True}
    table = result_table(summary)
    assert "| val error (ema weights, flip TTA)  |  5.00% |" in table, table
    assert "| test error (ema weights, flip TTA) |  6.90% |" in table, table
    assert "| train error (last epoch)" in table and "10.00% |" in table
    plain = result_table({**summary, "eval_weights": "raw", "tta": False, "val_acc": None})
    assert "| val error (raw weights) " in plain and "n/a |" in plain and "TTA" not in plain


def test_a_run_directory_is_claimed_by_creating_it(tmp_path, monkeypatch):
    """Two runs started in the same second get two folders, even when the other run makes its
    folder between a look and a make (as if `exists()` had answered before it did)."""
    import pathlib
    import time

    from resattn.engine.logger import new_run_dir

    monkeypatch.setattr(time, "strftime", lambda fmt: "20261202-120000")
    first = new_run_dir(tmp_path, "m", "d")
    monkeypatch.setattr(pathlib.Path, "exists", lambda self: False)  # the race, made certain
    second = new_run_dir(tmp_path, "m", "d")
    third = new_run_dir(tmp_path, "m", "d")
    assert [p.name for p in (first, second, third)] == [
        "20261202-120000_m_d", "20261202-120000_m_d-1", "20261202-120000_m_d-2"]
    assert all(p.is_dir() for p in (first, second, third))
