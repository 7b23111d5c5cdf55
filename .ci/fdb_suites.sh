#!/usr/bin/env bash
# The FoundationDB suites: the store's (conformance, unknown commit results, injected
# commit faults, limits, shared watches, prefix reads with commits between their pages,
# subscriptions racing writers, the conditional append oracle, the engine's retry loop and
# health), the façade's whole test suite with every TestApp on the cluster, and the courses
# example's whole test suite on it (three instances on one namespace, one killed -9; kill -9
# with idempotency keys in flight; the promotion race), run twice: as they are, then with
# FoundationDB's client fault injection (buggify) on. Prints how many tests passed each
# way. Uses the cluster FAIRWAY_FDB_CLUSTER_FILE names, or starts a local one from
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

# Runs every suite once; prints and records how many tests passed ($1 names the run).
counts=()
run_suites() {
  local log
  log=$(mktemp)
  cargo test -p fairway-dcb --features fdb \
    --test conformance_fdb --test unknown_results --test commit_faults --test limits --test shared_watch \
    --test prefix_reads --test subscribe_race --test concurrency_oracle \
    --test fdb_engine 2>&1 | tee "$log"
  FAIRWAY_TEST_ENGINE=fdb cargo test -p fairway --features fdb 2>&1 | tee -a "$log"
  # The courses suite with its apps and child processes on the cluster (the data directory
  # refusals and the log format on the embedded store, as they claim).
  FAIRWAY_TEST_ENGINE=fdb cargo test -p courses --features fdb 2>&1 | tee -a "$log"
  local passed
  passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$log" | awk '{ n += $1 } END { print n + 0 }')
  rm -f "$log"
  counts+=("$1: $passed tests passed")
  echo "fdb_suites: $1: $passed tests passed"
}

run_suites "client buggify off"

# Again with FoundationDB's client fault injection: spurious timeouts, not_committed,
# transaction_too_old, commit_unknown_result after landed commits... in every process that
# loads libfdb_c. Each buggify section fires 10 % of the times it is reached.
export FDB_NETWORK_OPTION_CLIENT_BUGGIFY_ENABLE=
export FDB_NETWORK_OPTION_CLIENT_BUGGIFY_SECTION_ACTIVATED_PROBABILITY=100
export FDB_NETWORK_OPTION_CLIENT_BUGGIFY_SECTION_FIRED_PROBABILITY=10
run_suites "client buggify on (10 %)"
unset FDB_NETWORK_OPTION_CLIENT_BUGGIFY_ENABLE FDB_NETWORK_OPTION_CLIENT_BUGGIFY_SECTION_ACTIVATED_PROBABILITY \
  FDB_NETWORK_OPTION_CLIENT_BUGGIFY_SECTION_FIRED_PROBABILITY

printf 'fdb_suites: %s\n' "${counts[@]}"
