#!/usr/bin/env bash
# Serves Real Dispatch on PORT (default 8000) with the django-q2 worker beside it, until Ctrl-C.
# `make run` calls this after installing, migrating and loading the demo data.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${VENV_PYTHON:-.venv/bin/python}"
PORT="${PORT:-8000}"
BIND_ADDRESS="${BIND_ADDRESS:-0.0.0.0}"
BASE_URL="http://127.0.0.1:$PORT"
# Links the app prints or sends (status pages, packets) must point at this server.
export DISPATCH_PUBLIC_URL="${DISPATCH_PUBLIC_URL:-$BASE_URL}"
export PYTHONUNBUFFERED=1

web_pid=""
worker_pid=""

stop_all() {
    trap - INT TERM EXIT
    local pid alive
    for pid in $web_pid $worker_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # The worker finishes its running task before it exits; give it a while, no more.
    for _ in $(seq 1 75); do
        alive=0
        for pid in $web_pid $worker_pid; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [[ $alive -eq 0 ]] && break
        sleep 0.2
    done
    [[ -n "$web_pid" ]] && kill -KILL "$web_pid" 2>/dev/null || true
    # The worker leads its own process group (setsid below): this also ends its children.
    [[ -n "$worker_pid" ]] && kill -KILL -- "-$worker_pid" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap 'echo; echo "Stopping web server and worker..."; stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# Background jobs of a script ignore Ctrl-C, so the traps above stop them with SIGTERM.
# The worker gets its own session as well: it does catch Ctrl-C, and a second signal arriving
# while it handles the first can deadlock django-q2's shutdown and orphan its processes.
setsid "$PYTHON" manage.py qcluster &
worker_pid=$!
# uvicorn serves config/asgi.py: Django (static files included, as runserver would) and the MCP endpoint at /mcp.
"$PYTHON" -m uvicorn config.asgi:application --host "$BIND_ADDRESS" --port "$PORT" &
web_pid=$!

# Print the banner once the server answers (any HTTP status), so the URLs work when they appear.
server_answers() {
    "$PYTHON" - "$BASE_URL/health" 2>/dev/null <<'PY'
import sys
import urllib.error
import urllib.request

try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
PY
}
for _ in $(seq 1 120); do
    if ! kill -0 "$web_pid" 2>/dev/null; then
        break
    fi
    if server_answers; then
        cat <<BANNER

  Real Dispatch is running at $BASE_URL/   (worker: django-q2 qcluster)

    Back office (admin)   $BASE_URL/admin/
    Dispatch board        $BASE_URL/board/
    Technician's phone    $BASE_URL/tech/
    Service request form  $BASE_URL/request/
    Agent API docs        $BASE_URL/api/v1/docs
    Agent tools over MCP  $BASE_URL/mcp   (or stdio: manage.py mcp_server)
    Health                $BASE_URL/health

  Demo logins (username / password):
    dispatcher            dispatcher / dispatcher-demo
    technician            tech.dana  / technician-demo
    admin                 admin      / admin-demo

  Press Ctrl-C to stop both.

BANNER
        break
    fi
    sleep 0.5
done

# Whichever process ends first (a crash, a port already in use) ends the other one too.
status=0
wait -n "$web_pid" "$worker_pid" || status=$?
echo "A process exited (status $status); stopping the other one." >&2
exit "$status"
