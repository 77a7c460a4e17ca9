"""Wire-level helpers the fast path relies on."""

from __future__ import annotations

import pytest

from addons.coredns_lite import wire


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        (b"\x00", ()),
        (b"\x03svc\x07cluster\x05local\x00", ("svc", "cluster", "local")),
        (b"\x03S\xffc\x00", ("S\xffc",)),  # one char per byte, case kept
        (b"\x03svc\xc0\x0c", None),  # a pointer
        (b"\x03svc\x40abc\x00", None),  # reserved label type
        (b"\x05svc\x00", None),  # label past the end
        (b"\x03svc\x00\x00", None),  # bytes after the root label
        (b"\x03svc", None),  # no root label
        ((b"\x3f" + b"a" * 63) * 4 + b"\x00", None),  # 257 bytes
    ],
)
def test_plain_labels(name: bytes, labels: tuple[str, ...] | None) -> None:
    assert wire.plain_labels(name) == labels


def test_templates_cut_at_record_boundaries() -> None:
    query = wire.parse_query(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01")
    record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\x7f\x00\x00\x01"  # 16 bytes
    template = wire.Template(tail=record * 3, ends=(16, 32, 48), ancount=3, nscount=0, arcount=0)
    whole = template.render(query, limit=512)
    assert whole[:2] == b"\x12\x34" and whole[7] == 3 and not whole[2] & 0x02
    cut = template.render(query, limit=12 + 7 + 40)
    assert cut[7] == 2 and cut[2] & 0x02 and len(cut) == 12 + 7 + 32
    with pytest.raises(ValueError, match="record end"):
        wire.Template(tail=record, ends=(), ancount=1, nscount=0, arcount=0)
