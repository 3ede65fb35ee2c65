#!/usr/bin/env bash
# Makes sure the local services the tests talk to are running, starting (and,
# on a machine without them, installing) only what is not already reachable:
#
#   PostgreSQL  127.0.0.1:5432  trust auth, database "test"
#   NATS        127.0.0.1:4222  with JetStream
#   Redis       127.0.0.1:6379  nothing kept on disk
#
# The start commands are the ones the go-svc machines use. Idempotent: when
# everything runs it only checks, in well under a second. Never stops anything.
# SERVICES_TIMEOUT (seconds, default 30) bounds each wait; SERVICES picks a
# subset (default "postgres nats redis").
set -euo pipefail
SCRIPT_NAME=services.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

TIMEOUT=${SERVICES_TIMEOUT:-30}
SERVICES=${SERVICES:-postgres nats redis}
PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres PG_DB=${PG_DB:-test}
NATS_HOST=127.0.0.1 NATS_PORT=4222 NATS_STORE_DIR=${NATS_STORE_DIR:-/var/lib/nats-server}
REDIS_HOST=127.0.0.1 REDIS_PORT=6379

overall_start=$(now_ms)
report() { printf '  %-10s %-16s %s\n' "$1" "$2" "$3"; }

# ---------------------------------------------------------------- PostgreSQL
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -t 1 2>/dev/null; }
pg_sql() { psql -X -q -v ON_ERROR_STOP=1 -U "$PG_USER" -h "$PG_HOST" -p "$PG_PORT" -d postgres -tAc "$1"; }

# pg_trust_local makes host connections from loopback trusted, as on the
# go-svc machines; only used on a cluster this script had to install.
pg_trust_local() {
  local hba
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    if ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
      log "postgres: allowing trust auth from 127.0.0.1 and ::1 in $hba"
      as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
    fi
  done
}

pg_has_db() { pg_sql "select count(*) from pg_database where datname = '$PG_DB'" 2>/dev/null; }

ensure_postgres() {
  local what="already running" start installed=0 has
  start=$(now_ms)
  # One query both proves the server answers with trust auth and tells
  # whether the database exists: the fast path when all is well.
  if ! has=$(pg_has_db); then
    if pg_ready; then
      die "postgres: cannot connect as $PG_USER to $PG_HOST:$PG_PORT without a password (trust auth expected)"
    fi
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z $(ls /usr/lib/postgresql 2>/dev/null) ]]; then
      apt_install postgresql
      installed=1
    fi
    local ver
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    if [[ -z $ver ]]; then  # the package normally creates one; make it if not
      ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
      log "postgres: creating cluster $ver/main"
      as_root pg_createcluster "$ver" main >/dev/null
      installed=1
    fi
    if (( installed )); then pg_trust_local; fi
    if ! pg_ready; then
      as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    elif (( installed )); then  # the package's own start ran before pg_trust_local
      as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
    fi
    wait_until "$TIMEOUT" "postgres on $PG_HOST:$PG_PORT" pg_ready
    what="started in $(( $(now_ms) - start )) ms"
    has=$(pg_has_db) ||
      die "postgres: cannot connect as $PG_USER to $PG_HOST:$PG_PORT without a password (trust auth expected)"
  fi
  if [[ $has != 1 ]]; then
    createdb -U "$PG_USER" -h "$PG_HOST" -p "$PG_PORT" "$PG_DB"
    what+=", created database $PG_DB"
  fi
  report postgres "$PG_HOST:$PG_PORT" "$what"
}

# ---------------------------------------------------------------------- NATS
# nats_info prints the INFO line the server sends on connect.
nats_info() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    IFS= read -r -t 2 line <&3 || exit 1
    printf "%s\n" "$line"' _ "$NATS_HOST" "$NATS_PORT" 2>/dev/null
}
nats_js_ready() { local i; i=$(nats_info) && [[ $i == INFO* && $i == *'"jetstream":true'* ]]; }

ensure_nats() {
  local what="already running" start info
  start=$(now_ms)
  if info=$(nats_info) && [[ $info == INFO* ]]; then
    [[ $info == *'"jetstream":true'* ]] ||
      die "nats: a server on $NATS_HOST:$NATS_PORT runs without JetStream; restart it with -js"
  else
    [[ -x /usr/sbin/nats-server ]] || apt_install nats-server
    if ! nats_js_ready; then
      as_root mkdir -p "$NATS_STORE_DIR"
      as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a "$NATS_HOST" -p "$NATS_PORT" -js -sd "$NATS_STORE_DIR" -l /var/log/nats-server.log
    fi
    wait_until "$TIMEOUT" "nats (JetStream) on $NATS_HOST:$NATS_PORT" nats_js_ready
    what="started in $(( $(now_ms) - start )) ms"
  fi
  report nats "$NATS_HOST:$NATS_PORT" "$what (JetStream on)"
}

# --------------------------------------------------------------------- Redis
redis_ready() {
  command -v redis-cli >/dev/null 2>&1 &&
    [[ $(timeout 2 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

ensure_redis() {
  local what="already running" start
  start=$(now_ms)
  if ! redis_ready; then
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
      apt_install redis-server redis-tools
    fi
    if ! redis_ready; then
      as_root mkdir -p /var/lib/redis /var/log/redis
      as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
    fi
    wait_until "$TIMEOUT" "redis on $REDIS_HOST:$REDIS_PORT" redis_ready
    what="started in $(( $(now_ms) - start )) ms"
  fi
  report redis "$REDIS_HOST:$REDIS_PORT" "$what"
}

echo "services:"
for svc in $SERVICES; do
  case $svc in
  postgres | nats | redis) "ensure_$svc" ;;
  *) die "unknown service $svc (want postgres, nats or redis)" ;;
  esac
done
echo "services: ready in $(( $(now_ms) - overall_start )) ms"
