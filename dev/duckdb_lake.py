"""`make duckdb`: a DuckDB session with a view per raw table over the lake folder, or the
results of one query (``--sql``). Statements end with ``;``; an empty line or EOF quits."""

from __future__ import annotations

import argparse
import sys

import duckdb

from include.taxi.transform.duckdb_lake import create_views, lake_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake", help="the lake folder (default: taxi_lake_url, .data/lake)")
    parser.add_argument("--sql", help="run this query, print its results and exit")
    args = parser.parse_args(argv)
    lake = lake_folder(args.lake)
    con = duckdb.connect()
    views = create_views(con, lake)
    if not views:
        print(
            f"no parquet files under {lake}: load months with taxi_to_lake first", file=sys.stderr
        )
        return 1
    if args.sql:
        con.sql(args.sql).show(max_rows=200)
        return 0
    print(f"views over {lake}: {', '.join(views)}. End statements with ';', empty line quits.")
    buffer = ""
    for line in sys.stdin:
        if not line.strip() and not buffer:
            break
        buffer += line
        if buffer.rstrip().endswith(";"):
            try:
                con.sql(buffer).show(max_rows=200)
            except duckdb.Error as exc:
                print(exc, file=sys.stderr)
            buffer = ""
    return 0


if __name__ == "__main__":
    sys.exit(main())
