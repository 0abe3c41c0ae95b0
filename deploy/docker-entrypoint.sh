#!/bin/sh
# The image's entry point: one image runs every Rapport process, chosen by the first word.
#
#   api <service>                 the service's API under gunicorn (portal included)
#   relay <service>               its outbox relay
#   consume <service> [args...]   its projections and loops (args as `python -m shared.run consume`)
#   rebuild <service> <projection>   rebuild a projection into a new generation and swap it in
#   topics                        create every service's topic
#   seed                          the demo practice (as `make up`)
#   devmail | devsms              the development mail and SMS sinks (never for production)
#   anything else                 run as given, e.g. `python -m services.notifications.devmail`
#
# The command lines are the same as `make up` runs (deploy/local/stack.py); tests/ops compares
# them with RAPPORT_ENTRYPOINT_DRY_RUN=1, which prints the command instead of running it.
# `exec` hands PID 1 to the process itself so SIGTERM reaches gunicorn / shared.run directly.
set -eu

ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
SERVICES="scheduling records measures notifications billing"

run() {
    if [ -n "${RAPPORT_ENTRYPOINT_DRY_RUN:-}" ]; then
        printf '%s\n' "$@"
        exit 0
    fi
    exec "$@"
}

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "docker-entrypoint: $*" >&2
    exit 64  # EX_USAGE: a wrong command line, not a crash; orchestrators show it in the logs
}

need_service() {  # need_service <name> <allowed...>
    name=$1
    shift
    for allowed in "$@"; do
        [ "$name" = "$allowed" ] && return 0
    done
    die "unknown service '$name' (expected one of: $*)"
}

default_port() {
    case $1 in
        portal) echo 8100 ;;
        scheduling) echo 8101 ;;
        records) echo 8102 ;;
        measures) echo 8103 ;;
        notifications) echo 8104 ;;
        billing) echo 8105 ;;
    esac
}

command=${1:-help}
[ $# -gt 0 ] && shift

case $command in
    api)
        [ $# -eq 1 ] || die "usage: api <service>"
        need_service "$1" $SERVICES portal
        upper=$(echo "$1" | tr '[:lower:]' '[:upper:]')
        port=$(eval "echo \${RAPPORT_${upper}_PORT:-$(default_port "$1")}")
        # gunicorn's workers share metrics through files here (deploy/gunicorn.conf.py clears it)
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus/$1}"
        run "$PYTHON" -m gunicorn -c "$ROOT/deploy/gunicorn.conf.py" \
            --bind "${RAPPORT_BIND_HOST:-0.0.0.0}:$port" "services.$1.wsgi:app"
        ;;
    relay)
        [ $# -eq 1 ] || die "usage: relay <service>"
        need_service "$1" $SERVICES
        run "$PYTHON" -m shared.run relay "$1"
        ;;
    consume)
        [ $# -ge 1 ] || die "usage: consume <service> [--projection P] [--instance N] [--no-loops]"
        need_service "$1" $SERVICES
        # Static group membership needs a stable index per process: a StatefulSet passes its
        # pod ordinal in RAPPORT_CONSUMER_INSTANCE unless --instance is given explicitly.
        case " $* " in
            *" --instance"*) ;;
            *)
                if [ -n "${RAPPORT_CONSUMER_INSTANCE:-}" ]; then
                    case $RAPPORT_CONSUMER_INSTANCE in
                        *[!0-9]*) die "RAPPORT_CONSUMER_INSTANCE must be a number, not '$RAPPORT_CONSUMER_INSTANCE'" ;;
                    esac
                    set -- "$@" --instance "$RAPPORT_CONSUMER_INSTANCE"
                fi
                ;;
        esac
        run "$PYTHON" -m shared.run consume "$@"
        ;;
    rebuild)
        [ $# -eq 2 ] || die "usage: rebuild <service> <projection>"
        need_service "$1" $SERVICES
        run "$PYTHON" -m shared.run rebuild "$1" "$2"
        ;;
    topics)
        [ $# -eq 0 ] || die "usage: topics"
        run "$PYTHON" -m shared.run topics
        ;;
    seed)
        run "$PYTHON" -m deploy.local.seed "$@"
        ;;
    devmail)
        run "$PYTHON" -m services.notifications.devmail --port "${RAPPORT_SMTP_PORT:-8025}"
        ;;
    devsms)
        run "$PYTHON" -m services.notifications.devsms --port 8026
        ;;
    help | --help | -h)
        usage
        ;;
    *)
        run "$command" "$@"
        ;;
esac
