"""Every code p2pkit lists is the spec table's (multicodec-table.csv)."""

import csv

from p2pkit.ipfs.multicodec import TAGS
from tests.ipfs.spec_protos import SPECS, require_specs


def test_codes_match_the_spec_table():
    require_specs()
    table = {}
    with open(SPECS / "multicodec-table.csv") as f:
        for row in csv.reader(f):
            name, tag, code = (x.strip() for x in row[:3])
            if name != "name":
                table[name] = (tag, int(code, 16))
    for name, entry in TAGS.items():
        assert table[name] == entry, name
