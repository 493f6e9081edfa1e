#!/usr/bin/env bash
# `make run`: the whole of FlowPay on one machine, with nothing but Python.
#
#   migrate -> seed demo data -> Celery worker with embedded beat + web server on :$PORT
#
# It needs no database or broker server: SQLite in WAL mode, kombu's filesystem broker and
# a file cache, all under $FLOWPAY_RUN_DIR (default .run/; `make clean` removes it).
# DATABASE_URL, REDIS_URL, CELERY_BROKER_URL and CACHE_URL are IGNORED (unset) unless you
# pass FLOWPAY_USE_ENV=1, so that a DATABASE_URL exported for something else never points
# the demo at it by surprise:
#
#   FLOWPAY_USE_ENV=1 DATABASE_URL=postgres://... REDIS_URL=redis://... make run
#
# Usage: scripts/run_dev.sh          run everything until Ctrl-C (or SIGTERM)
#        scripts/run_dev.sh migrate  only apply migrations to the same database
# Environment: PORT (3000), FLOWPAY_RUN_DIR (.run), FLOWPAY_USE_ENV (0),
#   FLOWPAY_GATEWAYS (stripe,simulator), LOCALSTRIPE_PORT (8420): unless STRIPE_API_BASE is
#   set, localstripe is started beside the web server so the demo runs the real Stripe adapter.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY="$ROOT/.venv/bin/python"
CELERY="$ROOT/.venv/bin/celery"
QUEUES="default,payments,webhooks,rebill.daily,rebill.weekly,rebill.monthly,rebill.yearly,reconciliation"

if [[ ! -x "$PY" || ! -x "$CELERY" ]]; then
    echo "No virtualenv at .venv: run 'make run' (or 'make venv' first)." >&2
    exit 1
fi

if [[ "${FLOWPAY_USE_ENV:-0}" == "1" ]]; then
    echo "FLOWPAY_USE_ENV=1: using DATABASE_URL/REDIS_URL/CELERY_BROKER_URL/CACHE_URL from the environment." >&2
else
    unset DATABASE_URL REDIS_URL CELERY_BROKER_URL CACHE_URL
fi

export DEBUG=1
export PORT="${PORT:-3000}"
RUN_DIR="${FLOWPAY_RUN_DIR:-.run}"
[[ "$RUN_DIR" == /* ]] || RUN_DIR="$ROOT/$RUN_DIR"
export FLOWPAY_RUN_DIR="$RUN_DIR"
export PYTHONUNBUFFERED=1
LOG_DIR="$RUN_DIR/logs"
mkdir -p "$RUN_DIR/broker/queue" "$RUN_DIR/broker/processed" "$RUN_DIR/cache" "$LOG_DIR"

"$PY" manage.py migrate --noinput
if [[ "${1:-}" == "migrate" ]]; then
    exit 0
fi
if [[ $# -gt 0 ]]; then
    echo "usage: $0 [migrate]" >&2
    exit 2
fi

port_busy() {
    "$PY" -c 'import socket, sys; s = socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$PORT"
}
if port_busy; then
    echo "Something is already listening on 127.0.0.1:$PORT (another 'make run'?). Stop it or use PORT=3001 make run." >&2
    exit 1
fi

# --- background processes; all of them are stopped on exit ---------------------------
PIDS=()
cleanup() {
    trap - INT TERM EXIT
    if [[ ${#PIDS[@]} -gt 0 ]]; then
        echo >&2
        echo "Stopping FlowPay (web, worker and localstripe)..." >&2
        kill -TERM "${PIDS[@]}" 2>/dev/null || true
        # The worker stops its embedded beat itself; give everyone 10 s, then insist.
        for _ in $(seq 1 50); do
            local alive=0
            for pid in "${PIDS[@]}"; do
                kill -0 "$pid" 2>/dev/null && alive=1
            done
            [[ $alive == 0 ]] && break
            sleep 0.2
        done
        for pid in "${PIDS[@]}"; do
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        done
        wait 2>/dev/null || true
    fi
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# --- the demo's Stripe: localstripe, so that payments run the real Stripe adapter --------
export FLOWPAY_GATEWAYS="${FLOWPAY_GATEWAYS:-stripe,simulator}"
LOCALSTRIPE_NOTE=""
if [[ ",$FLOWPAY_GATEWAYS," == *",stripe,"* && -z "${STRIPE_API_BASE:-}" ]]; then
    LOCALSTRIPE_PORT="${LOCALSTRIPE_PORT:-8420}"
    if "$PY" -c 'import socket, sys; s = socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$LOCALSTRIPE_PORT"; then
        echo "Port $LOCALSTRIPE_PORT is taken; using the localstripe (or whatever) already listening there." >&2
    else
        "$ROOT/.venv/bin/localstripe" --port "$LOCALSTRIPE_PORT" >>"$LOG_DIR/localstripe.log" 2>&1 &
        PIDS+=("$!")
    fi
    export STRIPE_API_BASE="http://127.0.0.1:$LOCALSTRIPE_PORT"
    export STRIPE_API_KEY="${STRIPE_API_KEY:-sk_test_flowpay_demo_key_0000}"
    export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_flowpay_demo}"
    for _ in $(seq 1 60); do
        "$PY" -c 'import socket, sys; s = socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$LOCALSTRIPE_PORT" && break
        sleep 0.5
    done
    LOCALSTRIPE_NOTE=" Stripe     $STRIPE_API_BASE (localstripe; log: ${LOG_DIR#"$ROOT/"}/localstripe.log)"
fi

SEED_OUTPUT=$("$PY" manage.py seed_demo)
API_KEY=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["apiKey"])' "$RUN_DIR/demo-credentials.json")

# Celery worker with beat embedded (-B), solo pool: one process for every queue.
"$CELERY" -A flowpay worker -B --pool=solo -Q "$QUEUES" --loglevel=INFO \
    -s "$RUN_DIR/celerybeat-schedule" >>"$LOG_DIR/worker.log" 2>&1 &
WORKER_PID=$!
PIDS+=("$WORKER_PID")

# The web server: Django's development server, no autoreload (restart `make run` after edits).
"$PY" manage.py runserver "127.0.0.1:$PORT" --noreload &
WEB_PID=$!
PIDS+=("$WEB_PID")

BASE="http://127.0.0.1:$PORT"
ready=0
for _ in $(seq 1 120); do
    if ! kill -0 "$WEB_PID" 2>/dev/null; then
        echo "The web server exited during startup (see above)." >&2
        exit 1
    fi
    if ! kill -0 "$WORKER_PID" 2>/dev/null; then
        echo "The Celery worker exited during startup; last lines of $LOG_DIR/worker.log:" >&2
        tail -n 30 "$LOG_DIR/worker.log" >&2 || true
        exit 1
    fi
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$BASE/healthz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ $ready != 1 ]]; then
    echo "FlowPay did not answer on $BASE/healthz within 60 s." >&2
    exit 1
fi

cat <<EOF

================================================================================
 FlowPay is running (DEBUG, SQLite + filesystem broker under ${RUN_DIR#"$ROOT/"})

 API        $BASE/payment/
 API docs   $BASE/payment/docs      (OpenAPI: $BASE/payment/schema)
 Admin      $BASE/admin/
 Dashboard  $BASE/admin/?period=30d&mode=test   (gateways: $BASE/admin/dashboard/gateways/)
 Health     $BASE/payment/health    ($BASE/healthz, $BASE/readyz)
 Metrics    $BASE/metrics
 Gateways   $FLOWPAY_GATEWAYS (in priority order)
$LOCALSTRIPE_NOTE

$(sed 's/^/ /' <<<"$SEED_OUTPUT")

 Try it:
   curl -s $BASE/payment/transactions \\
     -H "Authorization: Bearer $API_KEY" -H "Content-Type: application/json" \\
     -d '{"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}'

 Worker and beat log: ${LOG_DIR#"$ROOT/"}/worker.log      Stop: Ctrl-C
================================================================================

EOF

# Run until a child exits or we are told to stop.
status=0
wait -n "${PIDS[@]}" || status=$?
echo "A FlowPay process exited (status $status); stopping the others." >&2
exit $(( status == 0 ? 1 : status ))
