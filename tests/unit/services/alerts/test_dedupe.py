from services.alerts import DeliveredIds


def test_ids_survive_a_restart(tmp_path):
    path = tmp_path / "g" / "delivered-ids.txt"
    ids = DeliveredIds(path, capacity=10)
    ids.add("a")
    ids.add("b")
    ids.close()
    again = DeliveredIds(path, capacity=10)
    assert "a" in again and "b" in again and "c" not in again


def test_bounded_oldest_forgotten_and_file_compacted(tmp_path):
    path = tmp_path / "ids.txt"
    ids = DeliveredIds(path, capacity=3)
    for i in range(10):
        ids.add(str(i))
    assert len(ids) == 3 and "9" in ids and "6" not in ids
    assert len(path.read_text().splitlines()) <= 6
    ids.close()
    assert set(DeliveredIds(path, capacity=3)._ids) == {"7", "8", "9"}


def test_in_memory_only():
    ids = DeliveredIds(None, capacity=2)
    ids.add("x")
    assert "x" in ids
