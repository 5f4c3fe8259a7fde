"""Work at import time, in this module's `<module>` frame: its code
object is freed once the import is done."""

import time

deadline = time.process_time() + 0.2
spins = 0
while time.process_time() < deadline:
    spins += 1


def test_module_level_work_ran():
    assert spins > 0
