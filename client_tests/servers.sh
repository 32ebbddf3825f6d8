# Outside servers for the attachment tests, started on 127.0.0.1 by client_tests/run:
# a second PostgreSQL 18 cluster and a MariaDB server (Debian's mariadb-server). Sourced.
# Exports LLM_SQL_REMOTE_PG_PORT and LLM_SQL_MYSQL_PORT; the tests know the fixed credentials.

REMOTE_PGDATA="$TEST_ROOT/remote_pg"
REMOTE_PG_PORT=${LLM_SQL_REMOTE_PG_PORT:-25431}
MYSQL_DIR="$TEST_ROOT/mariadb"
MYSQL_PORT=${LLM_SQL_MYSQL_PORT:-25432}
# Passwords with characters that need quoting and percent-encoding, on purpose.
REMOTE_PG_PASSWORD="r3m0te'pa;ss"
MYSQL_PASSWORD="my;p@ss'w"

stop_servers() {
  as_pg "$PG_BIN/pg_ctl" -D "$REMOTE_PGDATA" stop -m immediate -w >/dev/null 2>&1 || true
  if [ -f "$MYSQL_DIR/mariadb.pid" ]; then
    local pid
    pid=$(cat "$MYSQL_DIR/mariadb.pid")
    kill "$pid" 2>/dev/null || true
    # Wait for it to be gone (and its port free) before anyone starts another one.
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}

start_remote_pg() {
  rm -rf "$REMOTE_PGDATA"
  install -d -o "$PG_OS_USER" -m 700 "$REMOTE_PGDATA"
  as_pg "$PG_BIN/initdb" -D "$REMOTE_PGDATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  scripts/cluster-conf "$REMOTE_PGDATA" "$REMOTE_PG_PORT" "password_encryption = 'scram-sha-256'"
  as_pg "$PG_BIN/pg_ctl" -D "$REMOTE_PGDATA" -l "$REMOTE_PGDATA/server.log" -w start >/dev/null \
    || { tail -20 "$REMOTE_PGDATA/server.log"; die "the remote PostgreSQL cluster did not start"; }
  "$PG_BIN/psql" -h /tmp -p "$REMOTE_PG_PORT" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 \
    -v pw="$REMOTE_PG_PASSWORD" <<'SQL' >/dev/null
CREATE ROLE remote_reader LOGIN PASSWORD :'pw';
CREATE DATABASE crm OWNER remote_reader;
SQL
}

start_mariadb() {
  command -v mariadbd >/dev/null || die "mariadb-server is not installed: run scripts/setup"
  rm -rf "$MYSQL_DIR"
  install -d -o mysql -m 700 "$MYSQL_DIR"
  mariadb-install-db --user=mysql --datadir="$MYSQL_DIR/data" \
    --auth-root-authentication-method=socket >"$MYSQL_DIR/install.log" 2>&1 \
    || { tail -20 "$MYSQL_DIR/install.log"; die "mariadb-install-db failed"; }
  mariadbd --user=mysql --datadir="$MYSQL_DIR/data" --socket="$MYSQL_DIR/mariadb.sock" \
    --pid-file="$MYSQL_DIR/mariadb.pid" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --skip-log-bin --innodb-buffer-pool-size=32M >"$MYSQL_DIR/server.log" 2>&1 &
  for _ in $(seq 100); do
    mariadb -S "$MYSQL_DIR/mariadb.sock" -uroot -e "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.2
  done
  mariadb -S "$MYSQL_DIR/mariadb.sock" -uroot >/dev/null <<SQL \
    || { tail -20 "$MYSQL_DIR/server.log"; die "MariaDB did not start"; }
CREATE DATABASE shop;
CREATE USER 'shop'@'127.0.0.1' IDENTIFIED BY '$(printf %s "$MYSQL_PASSWORD" | sed "s/'/''/g")';
CREATE USER 'shop'@'localhost' IDENTIFIED BY '$(printf %s "$MYSQL_PASSWORD" | sed "s/'/''/g")';
GRANT ALL ON shop.* TO 'shop'@'127.0.0.1';
GRANT ALL ON shop.* TO 'shop'@'localhost';
-- What a DBA may have for the database server's OS user: logged in by the Unix socket, with
-- no password (the attachment tests show a non-superuser cannot borrow it).
CREATE USER 'postgres'@'localhost' IDENTIFIED VIA unix_socket;
GRANT ALL ON *.* TO 'postgres'@'localhost';
SQL
}

start_servers() {
  stop_servers
  start_remote_pg
  start_mariadb
  export LLM_SQL_REMOTE_PG_PORT=$REMOTE_PG_PORT LLM_SQL_MYSQL_PORT=$MYSQL_PORT
  export LLM_SQL_MYSQL_SOCKET="$MYSQL_DIR/mariadb.sock"
}
