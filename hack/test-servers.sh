#!/usr/bin/env bash
# Starts or stops the throwaway servers the tests use, each in its own temp dir on a free
# loopback port: PostgreSQL 15, MariaDB 10.11, a versitygw S3 server and a real ComfyUI
# (hack/comfyui.sh installs it; started with --multi-user, CPU only).
#
#   hack/test-servers.sh start STATE_DIR   # writes STATE_DIR/env (export lines for the tests)
#   hack/test-servers.sh stop  STATE_DIR   # stops what start started, removes the temp dirs
#
# MSS_TEST_SERVERS picks a subset (default: "postgres mariadb s3 comfyui").
#
# Safe to re-run: start stops a previous set in the same STATE_DIR first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?usage: test-servers.sh start|stop STATE_DIR}
state=${2:?usage: test-servers.sh start|stop STATE_DIR}
mkdir -p "$state"
state=$(cd "$state" && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port" >&2
	return 1
}

wait_for() { # wait_for NAME SECONDS CMD...
	local name=$1 secs=$2
	shift 2
	for _ in $(seq 1 $((secs * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "test-servers: $name did not become ready in ${secs}s; its log:" >&2
	cat "$state/$name.log" >&2 || true
	return 1
}

as_pg() { # postgres refuses to run as root
	if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
	if [[ -f $state/pg.dir ]]; then
		local d
		d=$(cat "$state/pg.dir")
		as_pg "$PGBIN/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1 || true
		rm -rf "$d" "$state/pg.dir"
	fi
	if [[ -f $state/mariadb.dir ]]; then
		local d
		d=$(cat "$state/mariadb.dir")
		[[ -f $d/mariadb.pid ]] && kill "$(cat "$d/mariadb.pid")" 2>/dev/null || true
		for _ in $(seq 1 50); do [[ -f $d/mariadb.pid ]] || break; sleep 0.1; done
		rm -rf "$d" "$state/mariadb.dir"
	fi
	if [[ -f $state/s3.pid ]]; then
		kill "$(cat "$state/s3.pid")" 2>/dev/null || true
		rm -f "$state/s3.pid"
		[[ -f $state/s3.dir ]] && rm -rf "$(cat "$state/s3.dir")" "$state/s3.dir"
	fi
	if [[ -f $state/comfyui.pid ]]; then
		local p
		p=$(cat "$state/comfyui.pid")
		kill "$p" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		rm -f "$state/comfyui.pid"
		[[ -f $state/comfyui.dir ]] && rm -rf "$(cat "$state/comfyui.dir")" "$state/comfyui.dir"
	fi
	rm -f "$state/env"
}

start_postgres() {
	local d port
	d=$(mktemp -d /tmp/mss-pg.XXXXXX)
	echo "$d" >"$state/pg.dir"
	port=$(free_port)
	[[ $(id -u) -eq 0 ]] && chown postgres "$d"
	# Passwords are checked over TCP (scram), as in production; the socket stays trust for setup.
	echo "mss-test-password" >"$d/pwfile"
	[[ $(id -u) -eq 0 ]] && chown postgres "$d/pwfile"
	as_pg "$PGBIN/initdb" -D "$d/data" --auth-local=trust --auth-host=scram-sha-256 \
		--pwfile="$d/pwfile" -U postgres >"$state/pg.log" 2>&1
	as_pg "$PGBIN/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $d -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start >>"$state/pg.log" 2>&1 || { cat "$state/pg.log" "$d/server.log" >&2; return 1; }
	echo "export MSS_TEST_POSTGRES_DSN='postgres://postgres:mss-test-password@127.0.0.1:$port/postgres?sslmode=disable'" >>"$state/env"
}

start_mariadb() {
	local d port me
	d=$(mktemp -d /tmp/mss-mariadb.XXXXXX)
	echo "$d" >"$state/mariadb.dir"
	port=$(free_port)
	me=$(id -un)
	mariadb-install-db --no-defaults --datadir="$d/data" --user="$me" \
		--auth-root-authentication-method=normal --skip-test-db >"$state/mariadb.log" 2>&1
	nohup mariadbd --no-defaults --datadir="$d/data" --socket="$d/mysql.sock" --pid-file="$d/mariadb.pid" \
		--port="$port" --bind-address=127.0.0.1 --user="$me" --skip-name-resolve --skip-log-bin \
		--innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 --max-connections=300 \
		>>"$state/mariadb.log" 2>&1 &
	wait_for mariadb 30 mariadb-admin --no-defaults --socket="$d/mysql.sock" -uroot ping
	# Tests create a database each, so the test user may create databases.
	mariadb --no-defaults --socket="$d/mysql.sock" -uroot -e \
		"CREATE USER 'mss'@'%' IDENTIFIED BY 'mss-test-password'; GRANT ALL ON *.* TO 'mss'@'%'; FLUSH PRIVILEGES;"
	echo "export MSS_TEST_MYSQL_DSN='mysql://mss:mss-test-password@127.0.0.1:$port/'" >>"$state/env"
}

start_s3() {
	local d port
	d=$(mktemp -d /tmp/mss-s3.XXXXXX)
	echo "$d" >"$state/s3.dir"
	port=$(free_port)
	ROOT_ACCESS_KEY=mss-test-access ROOT_SECRET_KEY=mss-test-secret-key \
		nohup "$root/bin/versitygw" --port "127.0.0.1:$port" --quiet posix "$d" >"$state/s3.log" 2>&1 &
	echo $! >"$state/s3.pid"
	wait_for s3 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
	{
		echo "export MSS_TEST_S3_ENDPOINT='http://127.0.0.1:$port'"
		echo "export MSS_TEST_S3_ACCESS_KEY='mss-test-access'"
		echo "export MSS_TEST_S3_SECRET_KEY='mss-test-secret-key'"
	} >>"$state/env"
}

start_comfyui() {
	local c d port pid
	c=$("$root/hack/comfyui.sh")
	d=$(mktemp -d /tmp/mss-comfyui.XXXXXX)
	echo "$d" >"$state/comfyui.dir"
	mkdir -p "$d/custom_nodes" "$d/models" "$d/input" "$d/output" "$d/user"
	port=$(free_port)
	# Its models, input, output and user folders under a throwaway base directory.
	# exec: the background job is ComfyUI itself, so that stop's kill reaches it.
	(cd "$c/ComfyUI" && PYTHONPATH="$c/py-stubs" exec /usr/bin/python3 main.py --cpu --listen 127.0.0.1 --port "$port" \
		--multi-user --front-end-root "$c/dist" --disable-auto-launch --base-directory "$d") >"$state/comfyui.log" 2>&1 &
	pid=$!
	echo "$pid" >"$state/comfyui.pid"
	local ready=
	for _ in $(seq 1 1200); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "test-servers: comfyui exited; its log:" >&2
			cat "$state/comfyui.log" >&2
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /api/system_stats HTTP/1.0\r\n\r\n' >&3 && grep -q ' 200 ' <&3) 2>/dev/null; then
			ready=1
			break
		fi
		sleep 0.1
	done
	if [[ -z $ready ]]; then
		echo "test-servers: comfyui did not answer in 120 s; its log:" >&2
		cat "$state/comfyui.log" >&2
		return 1
	fi
	{
		echo "export MSS_TEST_COMFYUI_URL='http://127.0.0.1:$port'"
		echo "export MSS_TEST_COMFYUI_DIR='$d'"
	} >>"$state/env"
}

case $cmd in
start)
	stop
	: >"$state/env"
	for server in ${MSS_TEST_SERVERS:-postgres mariadb s3 comfyui}; do
		case $server in
		postgres) start_postgres ;;
		mariadb) start_mariadb ;;
		s3) start_s3 ;;
		comfyui) start_comfyui ;;
		*) echo "test-servers: unknown server $server" >&2; exit 2 ;;
		esac
	done
	echo "test servers up; environment in $state/env" >&2
	;;
stop) stop ;;
*) echo "usage: test-servers.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
