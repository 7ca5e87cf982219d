# shellcheck shell=bash
# Shared by bench/report and the scripts in bench/targets/: how to run `calcmesh bench`, keep
# its JSON report and the exact command, and read figures back with jq.
#
# Environment (defaults are `calcmesh up`'s ports):
#   CALCMESH       the calcmesh binary            (build/release/bin/calcmesh)
#   OUT            where reports and commands go  (bench/out)
#   SUBMITTER_URL  job_submitter                  (http://127.0.0.1:8080)
#   COLLECTOR_URL  log_collector of the system    (http://127.0.0.1:8082)
#   KAFKA          the Kafka broker               (127.0.0.1:9092)
#   ROUNDS         rounds of each paired measurement (3)
#   DURATION       seconds measured per run       (5)
set -euo pipefail

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/stats.sh
source "$bench_root/bench/stats.sh"
CALCMESH=${CALCMESH:-$bench_root/build/release/bin/calcmesh}
OUT=${OUT:-$bench_root/bench/out}
SUBMITTER_URL=${SUBMITTER_URL:-http://127.0.0.1:8080}
COLLECTOR_URL=${COLLECTOR_URL:-http://127.0.0.1:8082}
KAFKA=${KAFKA:-127.0.0.1:9092}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
mkdir -p "$OUT"
[[ -x $CALCMESH ]] || { echo "bench: $CALCMESH not found: build first (make build)" >&2; exit 1; }

# cpu_ticks: "NAME TICKS" for every NAME=PID of $SERVICES (CPU time in 10 ms ticks).
cpu_ticks() {
    local pair
    for pair in ${SERVICES:-}; do
        echo "${pair%%=*} $(awk '{ print $14 + $15 }' "/proc/${pair#*=}/stat")"
    done
}

# quoted WORD...: the words as one command line that a shell reads back as the same words.
quoted() {
    local word line=''
    for word in "$@"; do
        [[ $word =~ ^[A-Za-z0-9_./:=,+-]+$ ]] || word="'${word//\'/\'\\\'\'}'"
        line+="${line:+ }$word"
    done
    printf '%s\n' "$line"
}

# bench NAME ARGS...: runs `calcmesh bench ARGS --json`, keeps the report in $OUT/NAME.json and
# the command in $OUT/NAME.cmd, and prints one line of figures. Fails if the bench refuses.
# With SERVICES="NAME=PID ...", also writes $OUT/NAME.cpu.json: the CPU time each process (and
# the bench itself) spent per right answer, in microseconds, over the whole run. Always writes
# $OUT/NAME.busy: the share of the machine's CPU time that was busy during the run.
bench() {
    local name=$1
    shift
    local -a command=(calcmesh bench "$@" --warmup "$WARMUP" --duration "$DURATION" --quiet --json)
    quoted "${command[@]}" >"$OUT/$name.cmd"
    local before stat_before TIMEFORMAT='%U %S'
    before=$(cpu_ticks)
    stat_before=$(cpu_stat)
    if ! { time "$CALCMESH" "${command[@]:1}" >"$OUT/$name.json" 2>"$OUT/$name.err"; } 2>"$OUT/$name.time"; then
        cat "$OUT/$name.err" >&2
        echo "bench: $name failed: ${command[*]}" >&2
        return 1
    fi
    echo "$stat_before $(cpu_stat)" | awk '{ printf "%.3f\n", ($4 > $2 ? ($3 - $1) / ($4 - $2) : 0) }' \
        >"$OUT/$name.busy"
    if [[ -n ${SERVICES:-} ]]; then
        local answers
        answers=$(jq .ok_with_warmup "$OUT/$name.json")
        {
            awk -v n="$answers" '{ printf "calcmesh_bench %.1f\n", ($1 + $2) * 1e6 / n }' "$OUT/$name.time"
            join <(sort <<<"$before") <(cpu_ticks | sort) |
                awk -v n="$answers" '{ printf "%s %.1f\n", $1, ($3 - $2) * 1e4 / n }'
        } | jq -Rn '[inputs | split(" ") | {(.[0]): (.[1] | tonumber)}] | add' >"$OUT/$name.cpu.json"
    fi
    jq -r --arg name "$name" \
        '"\($name): \(.throughput_rps | floor) ok/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, errors \(.errors)"' \
        "$OUT/$name.json"
}

# figure NAME JQ-PATH: one number from a report, e.g. `figure healthz-1 .throughput_rps`.
figure() { jq -r "$2" "$OUT/$1.json"; }

# log_batches URL: "RECORDS REQUESTS" that the log_collector at URL has stored and answered
# on /save_log since it started, from its metrics.
log_batches() {
    curl -sf "$1/metrics" | awk '
        /^calcmesh_log_records_stored_total / { records = $2 }
        /^calcmesh_http_request_duration_seconds_count\{route="\/save_log"\}/ { requests = $2 }
        END { print records + 0, requests + 0 }'
}

# result NAME JSON: the figure of a target, for the report.
result() { printf '%s\n' "$2" >"$OUT/$1.result.json"; }
