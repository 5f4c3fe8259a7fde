"""Dataclasses made at import: `dataclasses` makes each one's methods
with `exec`, code objects freed as soon as they are made."""

import dataclasses
import time

classes = []
deadline = time.process_time() + 0.2
while time.process_time() < deadline:
    fields = [("x", int), ("y", int)]
    classes.append(dataclasses.make_dataclass(f"Point{len(classes)}", fields, order=True))


def test_dataclasses_work():
    first = classes[0]
    assert first(1, 2) < first(1, 3)
