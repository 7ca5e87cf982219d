#!/usr/bin/env bash
# The local Kafka broker of scripts/kafka-broker, end to end: it starts on a free port, a topic
# made with `kafka-broker topics` (Kafka's own admin tool) carries a message from kcat to kcat,
# topics are not created by clients, and stop ends the broker's process cleanly.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
broker=$root/scripts/kafka-broker
"$root/scripts/install-deps" >/dev/null

dir=$(mktemp -d)
cleanup() {
    "$broker" stop --data-dir "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [[ -f $dir/broker.log ]]; then
        tail -n 20 "$dir/broker.log" >&2
    fi
    exit 1
}

"$broker" start --data-dir "$dir" --port 0
pid=$(<"$dir/broker.pid")
bootstrap=127.0.0.1:$(<"$dir/broker.port")

topic=kafka_broker_test_$$
"$broker" topics --data-dir "$dir" --topics "$topic" --partitions 2
partition_count=$(kcat -b "$bootstrap" -L -t "$topic" | grep -c 'partition [0-9]')
[[ $partition_count == 2 ]] || fail "topic $topic has $partition_count partitions, expected 2"
# Asking again for a topic that exists leaves it as it is.
"$broker" topics --data-dir "$dir" --topics "$topic" --partitions 5 >/dev/null ||
    fail "topics failed for the existing topic $topic"
partition_count=$(kcat -b "$bootstrap" -L -t "$topic" | grep -c 'partition [0-9]')
[[ $partition_count == 2 ]] || fail "topic $topic changed to $partition_count partitions"
if error=$("$broker" topics --data-dir "$dir" --topics "$topic" --partitions x 2>&1); then
    fail "topics took --partitions x"
fi
[[ $error == *"--partitions must be a whole number"* ]] || fail "unclear error for --partitions x: $error"

key=job-$RANDOM
value="{\"job_id\":\"$key\",\"sent\":\"$(date +%s%N)\"}"
printf '%s\n' "$value" | kcat -b "$bootstrap" -P -t "$topic" -k "$key"
consumed=$(kcat -b "$bootstrap" -C -t "$topic" -o beginning -e -q -f '%k %s\n')
[[ $consumed == "$key $value" ]] || fail "consumed '$consumed', expected '$key $value'"
echo "ok: message $key went through topic $topic"

# A producer asks for unknown topics to be created; the broker must refuse.
missing=missing_$$
if printf 'x\n' | kcat -b "$bootstrap" -P -t "$missing" -X message.timeout.ms=2000 2>/dev/null; then
    fail "producing to the missing topic $missing succeeded"
fi
if ! kcat -b "$bootstrap" -L -t "$missing" | grep -q "Unknown topic"; then
    fail "topic $missing was created automatically"
fi
echo "ok: topic $missing was not created automatically"

"$broker" stop --data-dir "$dir"
# The broker's parent is init once start returns; a zombie waiting to be reaped has exited too.
state=$(ps -o stat= -p "$pid" || true)
[[ -z $state || $state == Z* ]] || fail "broker pid $pid still runs after stop (state $state)"
[[ ! -e $dir/broker.pid ]] || fail "$dir/broker.pid is left after stop"
grep -q "Terminating process due to signal SIGTERM" "$dir/broker.log" || fail "the broker did not log SIGTERM"
if grep -E " (ERROR|FATAL) " "$dir/broker.log"; then
    fail "the broker logged errors"
fi
echo "ok: broker pid $pid stopped cleanly"
