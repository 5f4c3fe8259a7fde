"""A test module that works at import: its `<module>` code object is
freed once the import is done, and `dataclasses` makes each class's
methods with `exec` (code objects freed as soon as they are made)."""

import dataclasses
import time

# Module-level work (in this module's `<module>` frame).
deadline = time.process_time() + 0.2
spins = 0
while time.process_time() < deadline:
    spins += 1

# Classes made at import: their methods come from `exec`.
classes = []
deadline = time.process_time() + 0.2
while time.process_time() < deadline:
    classes.append(
        dataclasses.make_dataclass(f"Point{len(classes)}", [("x", int), ("y", int)], order=True)
    )


def test_module_level_work_ran():
    assert spins > 0 and classes
