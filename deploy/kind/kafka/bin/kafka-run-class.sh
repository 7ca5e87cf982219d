#!/usr/bin/env bash
# Runs a Kafka main class on the image's JVM with the jars of /opt/kafka/libs. It reads the
# variables that Apache Kafka's own kafka-run-class.sh reads, so that a pod tunes this image as
# it would tune apache/kafka:
#   KAFKA_HEAP_OPTS             heap flags (default -Xmx256M; kafka-server-start.sh: 1 GiB)
#   KAFKA_JVM_PERFORMANCE_OPTS  collector and compiler flags (default: Kafka's G1 settings;
#                               kafka-server-start.sh and kafka-tools set their own)
#   KAFKA_LOG4J_OPTS            logging (default: the tools' configuration, warnings on stderr)
#   KAFKA_OPTS                  any other JVM flag
#   JAVA_HOME                   another JVM than Debian's default one
# Each is split on spaces, as Kafka's script does. The JVM replaces this shell, so that it is the
# process that receives the container's signals.
#   kafka-run-class.sh CLASS [ARGUMENT...]
set -euo pipefail

if (($# < 1)); then
    echo "usage: kafka-run-class.sh CLASS [ARGUMENT...]" >&2
    exit 2
fi

readonly kafka_home=/opt/kafka
java=java
[[ -z ${JAVA_HOME:-} ]] || java=$JAVA_HOME/bin/java

read -ra heap <<<"${KAFKA_HEAP_OPTS:--Xmx256M}"
read -ra performance <<<"${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
read -ra log4j <<<"${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$kafka_home/config/tools-log4j2.xml}"
read -ra extra <<<"${KAFKA_OPTS:-}"

exec "$java" "${heap[@]}" "${performance[@]}" "${log4j[@]}" "${extra[@]}" \
    -cp "$kafka_home/libs/*" "$@"
