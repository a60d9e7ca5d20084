#!/usr/bin/env bash
# Runs provdb's whole test suite on a fresh Debian machine, installing what it needs:
# clang/libclang (rust-rocksdb builds RocksDB with bindgen), mosquitto (broker tests),
# graphviz (`query --svg`), mosquitto-clients and openssl (listener tests), Python's prov and
# duckdb (export interoperability), chromium, chromium-driver and selenium (`provdb ui`'s page),
# and pyspark where Java is present. Used by CI (.ci/run)
# and by developers alike.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
command -v openssl >/dev/null || need+=(openssl)
command -v dot >/dev/null || need+=(graphviz)
# `provdb ui`'s page is tested in headless Chromium, driven by selenium (tests/ui_browser.rs).
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || [ -x /usr/lib/chromium/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  scripts/install-deps.sh "${need[@]}"
fi
# Interoperability tests read provdb's exports with the reference readers: the Python `prov`
# package (PROV-JSON) and DuckDB (Parquet).
if ! python3 -c "import prov, duckdb" 2>/dev/null; then
  echo "==> pip install prov duckdb"
  python3 -m pip install --quiet --disable-pip-version-check prov duckdb
fi
if ! python3 -c "import selenium" 2>/dev/null; then
  echo "==> pip install selenium (drives Chromium in tests/ui_browser.rs)"
  python3 -m pip install --quiet --disable-pip-version-check selenium
fi
# Spark reads the Parquet export in tests/export_spark.rs where a Java runtime is present
# (pyspark from PyPI, about 450 MB; without Java the test prints SKIPPED).
if command -v java >/dev/null && ! python3 -c "import pyspark" 2>/dev/null; then
  echo "==> pip install pyspark (Java is present: the Spark interoperability test runs)"
  python3 -m pip install --quiet --disable-pip-version-check pyspark
fi
# The broker tests start their own mosquitto on a free loopback port; make sure the binary is
# on PATH (Debian installs it in /usr/sbin) and that no system service holds port 1883.
export PATH="$PATH:/usr/sbin"

echo "==> cargo fmt --check"
cargo fmt --all --check
# Clippy runs as the compiler of the workspace's own crates while the tests are built, not as
# a separate `cargo clippy` (a `cargo check`): check mode gives librocksdb-sys its own build
# directory, so RocksDB's C++ would be compiled twice, about 15 minutes each on 2 cores. This
# is what `cargo clippy --workspace --all-targets -- -D warnings` does, with codegen on.
CLIPPY_DRIVER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
echo "==> clippy -D warnings on all targets (build of tests and benchmarks)"
cargo test --workspace --all-targets --no-run
echo "==> the library without default features: builds, and compiles no CLI or service crate"
forbidden='^(clap|anyhow|indicatif|comfy-table|rustyline|tracing|tracing-subscriber|mimalloc|libmimalloc-sys|rumqttc|tokio|parquet|arrow-array|axum|axum-core|hyper|hyper-util|tower|matchit|futures-util) '
if cargo tree -p provdb --no-default-features -e normal --prefix none | grep -E "$forbidden"; then
  echo "error: the lean library depends on the crates above" >&2
  exit 1
fi
# Another feature set changes the features of crates RocksDB's build depends on, which would
# compile RocksDB's C++ again: link the check against the library just built instead.
rocksdb_lib="$(ls -d target/debug/build/librocksdb-sys-*/out 2>/dev/null | head -1)"
ROCKSDB_LIB_DIR="$rocksdb_lib" CARGO_TARGET_DIR=target/lean \
  cargo check -p provdb --no-default-features --lib
echo "==> cargo test"
# Unit, integration and doc tests (benchmarks were compiled and linted above; `cargo bench` runs them).
cargo test --workspace
# tests/import_direct_io.rs checks the branch the temporary folder's file system allows (ext4
# and tmpfs take O_DIRECT); the fallback to buffered writes, for file systems that refuse it,
# is checked again on a ramfs, which refuses it, where this machine lets us mount one.
ramfs="$(mktemp -d)"
if mount -t ramfs ramfs "$ramfs" 2>/dev/null; then
  echo "==> tests/import_direct_io.rs on a ramfs (refuses O_DIRECT: the import's fallback)"
  status=0
  TMPDIR="$ramfs" PROVDB_TEST_EXPECT_NO_DIRECT_IO=1 cargo test --test import_direct_io || status=$?
  umount "$ramfs"
  rmdir "$ramfs"
  [ "$status" -eq 0 ] || exit "$status"
else
  rmdir "$ramfs"
  echo "SKIPPED: the import's direct-I/O fallback on a ramfs (mounting one needs root)"
fi
