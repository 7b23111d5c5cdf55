#!/usr/bin/env bash
# The FoundationDB suites: the store's (conformance, unknown commit results, the engine's
# retry loop and health) and the façade's whole test suite with every TestApp on the
# cluster. Uses the cluster FAIRWAY_FDB_CLUSTER_FILE names, or starts a local one from
# ../shared/fdb/ (stopped on exit, also when a test fails). A case that would skip itself
# fails. Run by .ci/run and `cargo xtask fdb-test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${FAIRWAY_FDB_CLUSTER_FILE:-}" ]; then
  if [ ! -f ../shared/fdb/start.sh ]; then
    echo "fdb_suites: set FAIRWAY_FDB_CLUSTER_FILE (and LIBRARY_PATH/LD_LIBRARY_PATH to libfdb_c), or put FoundationDB in ../shared/fdb/" >&2
    exit 1
  fi
  eval "$(bash ../shared/fdb/start.sh target/fdb)"
  trap 'kill "$FDB_PID" 2>/dev/null || true' EXIT
fi

export FAIRWAY_FDB_REQUIRED=1
cargo test -p fairway-dcb --features fdb --test conformance_fdb --test unknown_results --test fdb_engine
FAIRWAY_TEST_ENGINE=fdb cargo test -p fairway --features fdb
