#!/bin/bash
# The engine comparison in bench/RESULTS.md ("Engines"): 4 KiB GET with wrk at 2 and 16
# connections and a Depth 1 PROPFIND of 10,000 files, on davserver in one process, with a
# worker process per CPU (the default start), under granian (WSGI) and under gunicorn
# (gthread), in interleaved rounds. Needs wrk, curl and granian (pip install granian).
#   bash bench/engines.sh [ROUNDS]    prints: engine figure value(s)
set -u
project=$(cd "$(dirname "$0")/.." && pwd)
bin=$project/.venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=18250
mkdir -p "$work/root/big"
head -c 4096 /dev/urandom > "$work/root/small"
"$bin/python" -c "
for i in range(10000):
    open(f'$work/root/big/f{i:05d}', 'wb').write(b'x' * 100)"
cat > "$work/app.py" <<PY
from davserver.app import create_app
from davserver.config import load
from davserver.server import build_services


def create(state):
    config = {"root": "$work/root", "state_dir": state, "access_log": False}
    return create_app(build_services(load(None, config)))


app = create("$work/state-granian")
PY
serve=("$bin/python" -m davserver serve "$work/root" --port $port --no-access-log
       --log-level warning)
start() {
  case $1 in
    one-process) "${serve[@]}" --state-dir "$work/state1" --workers 1 >/dev/null & ;;
    workers) "${serve[@]}" --state-dir "$work/state2" >/dev/null & ;;
    granian) (cd "$work" && PYTHONPATH=$project exec "$bin/granian" --interface wsgi \
      --host 127.0.0.1 --port $port --workers 2 --blocking-threads 8 --log-level error \
      app:app) & ;;
    gunicorn) (cd "$work" && PYTHONPATH=$project exec "$bin/gunicorn" --workers 2 \
      --threads 8 --worker-class gthread --bind 127.0.0.1:$port --log-level warning \
      "app:create('$work/state-gunicorn')") & ;;
  esac
  pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null -X OPTIONS http://127.0.0.1:$port/ && break
    sleep 0.1
  done
  sleep 1  # every worker up
}
for _ in $(seq "${1:-3}"); do
  for engine in one-process workers granian gunicorn; do
    start $engine
    for c in 2 16; do
      rate=$(wrk -t2 -c$c -d4s http://127.0.0.1:$port/small | awk '/Requests\/sec/ {print $2}')
      echo "$engine get-c$c $rate"
    done
    times=""
    for _ in 1 2 3; do
      times="$times $(curl -s -o /dev/null -w '%{time_total}' -X PROPFIND -H 'Depth: 1' \
        http://127.0.0.1:$port/big/)"
    done
    echo "$engine propfind-10k$times"
    kill -TERM $pid
    wait $pid 2>/dev/null
    sleep 1
  done
done
