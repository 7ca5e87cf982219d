#!/usr/bin/env bash
# Runs the broker in the foreground with the properties file given, like Apache Kafka's script
# of this name (without -daemon: the container is the daemon). As there, the heap defaults to
# 1 GiB; the broker logs to stdout (config/log4j2.xml), where the container runtime collects it.
# The collector defaults to the serial one instead of Kafka's G1: a small heap on a machine of
# few cores, where GC threads would compete with everything else (docs/kafka-broker.md, "GC").
# KAFKA_JVM_PERFORMANCE_OPTS replaces that choice.
#   kafka-server-start.sh server.properties [--override NAME=VALUE]...
set -euo pipefail

if (($# < 1)); then
    echo "usage: kafka-server-start.sh server.properties [--override NAME=VALUE]..." >&2
    exit 2
fi

export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
export KAFKA_JVM_PERFORMANCE_OPTS=${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -Djava.awt.headless=true}
export KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml}
exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"
