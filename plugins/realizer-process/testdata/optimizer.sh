#!/usr/bin/env bash
# A stand-in for Amoro's bin/optimizer.sh (dist/src/main/amoro-bin/bin/
# optimizer.sh at v0.8.1-incubating and master), reduced to how it reads
# its arguments: it dispatches on $1, takes the heap in MB as $2 (-Xmx$2m),
# and hands ${@:3} to the optimizer's main class. "java" is
# $STANDIN_JAVA, a test binary that parses those arguments as the
# optimizer does (args4j over OptimizerConfig) and runs an emulated one.

if [ -z "$STANDIN_JAVA" ]; then
  echo "STANDIN_JAVA is not set" >&2
  exit 1
fi

ARGS=${@:3}

JAVA_OPTS="-Xmx$2m -Dlog.home=${OPTIMIZER_LOG_DIR_NAME:-optimizer}"
RUN_SERVER="org.apache.amoro.optimizer.standalone.StandaloneOptimizer"
CMDS="$STANDIN_JAVA $JAVA_OPTS $RUN_SERVER $ARGS"

start() {
  nohup $CMDS > /dev/null 2>&1 &
  echo "Amoro Optimizer started in background with PID $!"
}

start-foreground() {
  exec $CMDS
}

case "$1" in
  start)
    start
    ;;
  start-foreground)
    start-foreground
    ;;
  stop|status|pid)
    echo "not running."
    exit 1
    ;;
  *)
    echo "Usage: $0 {start|start-foreground|stop|status|pid} <memory_limit_in_MB> [additional_args]"
    exit 1
    ;;
esac
