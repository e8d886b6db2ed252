"""Reads astrovec's IVOA Simple Cone Search with pyvo, as a VO client would.

Usage: scs_pyvo.py URL RA DEC SR EXPECTED_IDS
  URL           the cone search endpoint (http://host:port/scs/<collection>)
  RA, DEC, SR   cone centre and radius, ICRS degrees
  EXPECTED_IDS  comma-separated ids the cone must return (in any order)

Exits non-zero (with the reason on stderr) when a check fails.
"""

import math
import sys

import pyvo
from pyvo.dal import DALQueryError


def main():
    url, ra, dec, sr, expected = sys.argv[1:6]
    ra, dec, sr = float(ra), float(dec), float(sr)
    want = sorted(int(x) for x in expected.split(",") if x)

    service = pyvo.dal.SCSService(url)
    result = service.search(pos=(ra, dec), radius=sr, verbosity=3)
    table = result.to_table()
    got = sorted(int(x) for x in table["id"])
    assert got == want, f"ids {got} != expected {want}"
    assert sorted(int(rec.id) for rec in result) == want, "ID_MAIN column"

    # The SCS 1.03 UCDs let pyvo find the main id and position columns.
    for rec in result:
        rec_ra, rec_dec = rec.pos.ra.deg, rec.pos.dec.deg
        sep = math.degrees(
            math.acos(
                min(
                    1.0,
                    math.sin(math.radians(dec)) * math.sin(math.radians(rec_dec))
                    + math.cos(math.radians(dec))
                    * math.cos(math.radians(rec_dec))
                    * math.cos(math.radians(rec_ra - ra)),
                )
            )
        )
        assert sep <= sr + 1e-9, f"row {rec.id} lies {sep} deg from the centre"
        assert abs(sep - float(rec["separation"])) < 1e-6, "separation column is wrong"
    assert str(table["ra"].unit) == "deg", table["ra"].unit
    assert "redshift" in table.colnames, table.colnames

    # VERB=1 gives only the id and position columns.
    minimal = service.search(pos=(ra, dec), radius=sr, verbosity=1).to_table()
    assert minimal.colnames == ["id", "ra", "dec"], minimal.colnames

    # A failed request (here: an unknown collection) comes back as an SCS error
    # VOTable, which pyvo raises.
    missing = pyvo.dal.SCSService(url.rsplit("/", 1)[0] + "/no_such_collection")
    try:
        missing.search(pos=(ra, dec), radius=sr)
    except DALQueryError as e:
        assert "unknown collection" in str(e), str(e)
    else:
        raise AssertionError("an unknown collection was accepted")

    print(f"pyvo {pyvo.__version__}: {len(got)} rows as expected")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
