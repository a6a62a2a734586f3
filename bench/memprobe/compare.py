"""Memory allocated per socket between two snapshots, by package (see sitecustomize.py)."""

import collections
import sys
import tracemalloc


def package_of(traceback) -> str:
    files = [frame.filename for frame in traceback]
    if any("importlib" in f or f.startswith("<frozen") for f in files):
        return "(imports: once per process)"
    newest = files[-1].split("site-packages/")[-1].split("python3.12/")[-1]
    if "realtime/" in newest:
        return newest[newest.index("realtime/") :]
    return newest.split("/")[0]


def main(before: str, after: str, sockets: int) -> None:
    stats = tracemalloc.Snapshot.load(after).compare_to(
        tracemalloc.Snapshot.load(before), "traceback"
    )
    by_package: collections.Counter = collections.Counter()
    for stat in stats:
        by_package[package_of(stat.traceback)] += stat.size_diff
    for package, size in by_package.most_common(25):
        print(f"{size / sockets:9.0f} B per socket  {package}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
