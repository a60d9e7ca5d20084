#!/usr/bin/env bash
# Archive operations on one archive, timed in one run: export in every format (records/s,
# bytes per record), backup (time, size), check (time).
#
#   benches/archive_ops.sh ARCHIVE [PROVDB_BINARY]
#
# ARCHIVE is left unchanged (exports and the backup go to a temporary folder beside it). Use
# the 1M-edge archive `cargo bench --bench query` leaves in target/bench-archives/.
set -euo pipefail
archive="$1"
provdb="${2:-target/release/provdb}"
work="$(mktemp -d "${archive%/}.ops.XXXX")"
trap 'rm -rf "$work"' EXIT

records=$("$provdb" --db "$archive" stats --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["vertices"] + s["edges"])')
echo "archive $archive: $records records; machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB"

seconds() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
now() { date +%s.%N; }

for format in prov-json spade parquet; do
  out="$work/export.$format"
  t0=$(now)
  "$provdb" --db "$archive" export --format "$format" --out "$out" --quiet > /dev/null 2>&1
  t1=$(now)
  bytes=$(du -sb "$out" | cut -f1)
  s=$(seconds "$t0" "$t1")
  python3 -c "import sys; r,b,s=map(float,sys.argv[1:4]); print(f'export {sys.argv[4]:<9} {s:7.2f} s  {r/s:9.0f} records/s  {b/r:6.1f} bytes/record  ({b/1e6:.1f} MB)')" "$records" "$bytes" "$s" "$format"
  rm -rf "$out"
done

t0=$(now)
"$provdb" --db "$archive" backup "$work/backup" > /dev/null
t1=$(now)
echo "backup          $(seconds "$t0" "$t1") s  $(du -sb "$work/backup" | cut -f1) bytes (archive: $(du -sb "$archive" | cut -f1) bytes)"

t0=$(now)
"$provdb" --db "$archive" check > /dev/null
t1=$(now)
echo "check           $(seconds "$t0" "$t1") s"
