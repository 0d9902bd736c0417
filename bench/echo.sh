#!/usr/bin/env bash
# The echo benchmark: edgesim's multi-reactor server against a tokio and a mio echo server
# (bench-peers/), on loopback, driven by `edgesim load`, which checks every echoed byte.
#
# For each workload it runs the load REPEATS times for SECS seconds against each server,
# started afresh on a free loopback port for every run, and prints the median messages per
# second and the median server CPU time per message. On a 2-core machine the load generator needs a core
# as much as the server does, so msgs/s is shared between client and server; the server's
# CPU microseconds per message is the number that compares servers.
#
# Each peer runs with 1 and with 2 threads and its best median (msgs/s) is the one the
# ratios use, so no peer is judged on a configuration that suits it badly.
#
# Environment:
#   SECS=3        seconds per run
#   REPEATS=3     runs per (workload, server); the median is reported
#   EDGESIM       the edgesim binary (default: target/release/edgesim)
#   LOAD_CMD      the load generator (default: $EDGESIM load)
#   SERVERS       space-separated subset of: edgesim tokio-1 tokio-2 mio-1 mio-2
#   SKIP_BUILD=1  use the binaries as they are
set -euo pipefail

cd "$(dirname "$0")/.."
SECS="${SECS:-3}"
REPEATS="${REPEATS:-3}"
RELEASE=target/release
EDGESIM="${EDGESIM:-$RELEASE/edgesim}"
LOAD_CMD="${LOAD_CMD:-$EDGESIM load}"
SERVERS="${SERVERS:-edgesim tokio-1 tokio-2 mio-1 mio-2}"
# Each workload: name, connections, message bytes, messages in flight per connection.
WORKLOADS=("pingpong-64B 64 64 1" "pipelined-4KiB 64 4096 8")
SERVER_START_TIMEOUT_SECS=10

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release -p edgesim >&2
    # The peers are a workspace of their own (real tokio and mio); same target directory.
    cargo build --release --manifest-path bench-peers/Cargo.toml --target-dir target >&2
fi

# The edgesim row needs the `serve` verb; until it exists the peers still run.
have_edgesim_serve() {
    $EDGESIM serve --help >/dev/null 2>&1
}
if ! $LOAD_CMD --help >/dev/null 2>&1; then
    echo "echo.sh: '$LOAD_CMD --help' failed: the load generator is missing (set LOAD_CMD)" >&2
    exit 2
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_cmd() { # name port
    local name=$1 port=$2
    case "$name" in
    edgesim) echo "$EDGESIM serve --addr 127.0.0.1:$port --reactors 2 --trigger edge" ;;
    tokio-*) echo "$RELEASE/tokio-echo --addr 127.0.0.1:$port --threads ${name#tokio-}" ;;
    mio-*) echo "$RELEASE/mio-echo --addr 127.0.0.1:$port --threads ${name#mio-}" ;;
    *) echo "echo.sh: unknown server $name" >&2; return 1 ;;
    esac
}

SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT

# Starts a server and waits until its port accepts connections.
start_server() { # name port
    local cmd
    cmd=$(server_cmd "$1" "$2")
    $cmd >"$TMP/server.out" 2>"$TMP/server.err" &
    SERVER_PID=$!
    local deadline=$((SECONDS + SERVER_START_TIMEOUT_SECS))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "echo.sh: $cmd exited early: $(cat "$TMP/server.err")" >&2
            SERVER_PID=""
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "echo.sh: $cmd did not listen within ${SERVER_START_TIMEOUT_SECS}s" >&2
    stop_server
    return 1
}

# The median of the numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Value of key=... in a line.
field() { # key line
    tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS="$TMP/results" # workload server msgs_per_sec server_us p50 p99 errors
: >"$RESULTS"

if [[ " $SERVERS " == *" edgesim "* ]] && ! have_edgesim_serve; then
    echo "echo.sh: 'edgesim serve' does not exist yet; skipping the edgesim row" >&2
    SERVERS=$(tr ' ' '\n' <<<"$SERVERS" | grep -vx edgesim | tr '\n' ' ')
fi

# Repeats are the outer loop and every run gets a fresh server, so that a background load
# that comes and goes hits every server alike instead of all the runs of one.
for workload in "${WORKLOADS[@]}"; do
    read -r wname conns size pipeline <<<"$workload"
    for ((run_idx = 1; run_idx <= REPEATS; run_idx++)); do
        for server in $SERVERS; do
            port=$(free_port)
            start_server "$server" "$port" || continue
            out=$($LOAD_CMD --addr "127.0.0.1:$port" --conns "$conns" --size "$size" \
                --secs "$SECS" --pipeline "$pipeline" --server-pid "$SERVER_PID" || true)
            stop_server
            last=$(tail -n 1 <<<"$out")
            cpu=$(grep -o 'server_cpu_us_per_msg=[^ ]*' <<<"$out" | cut -d= -f2 || true)
            echo "$wname $server run $run_idx: $last server_cpu_us_per_msg=${cpu:-nan}" >&2
            echo "$(field msgs_per_sec "$last") ${cpu:-nan} $(field p50_us "$last") $(field p99_us "$last") $(field errors "$last")" >>"$TMP/runs.$wname.$server"
        done
    done
    for server in $SERVERS; do
        runs="$TMP/runs.$wname.$server"
        [[ -s "$runs" ]] || continue
        echo "$wname $server $(cut -d' ' -f1 "$runs" | median) $(cut -d' ' -f2 "$runs" | median) $(cut -d' ' -f3 "$runs" | median) $(cut -d' ' -f4 "$runs" | median) $(awk '{ s += $5 } END { print s }' "$runs")" >>"$RESULTS"
    done
done

echo
echo "echo benchmark: ${SECS}s per run, median of ${REPEATS} runs, $(nproc) cores"
# Client and server already share the cores; anything else running skews every number.
echo "load average before: $LOADAVG_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${LOADAVG_BEFORE%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
    echo "warning: the machine was busy before the benchmark started; numbers are unreliable"
fi
printf '%-15s %-8s %12s %14s %9s %9s %7s\n' workload server msgs/s srv_us/msg p50_us p99_us errors
while read -r wname server msgs cpu p50 p99 errors; do
    printf '%-15s %-8s %12.0f %14.3f %9s %9s %7s\n' "$wname" "$server" "$msgs" "$cpu" "$p50" "$p99" "$errors"
done <"$RESULTS"

# Ratios against each peer's best configuration: msgs/s above 1 and CPU/msg below 1 are
# wins for edgesim.
echo
for workload in "${WORKLOADS[@]}"; do
    read -r wname _ <<<"$workload"
    awk -v w="$wname" '
        $1 == w { msgs[$2] = $3; cpu[$2] = $4 }
        END {
            for (peer_idx = 1; peer_idx <= 2; peer_idx++) {
                peer = peer_idx == 1 ? "tokio" : "mio"
                best = ""; best_msgs = -1
                for (s in msgs) if (index(s, peer "-") == 1 && msgs[s] > best_msgs) { best = s; best_msgs = msgs[s] }
                if (best == "") { printf "%-15s edgesim/%-6s no peer result\n", w, peer; continue }
                if (!("edgesim" in msgs)) { printf "%-15s edgesim/%-6s n/a (best peer %s: %.0f msgs/s, %.3f us/msg)\n", w, peer, best, best_msgs, cpu[best]; continue }
                printf "%-15s edgesim/%-6s msgs/s x%.2f  srv_us/msg x%.2f  (vs %s)\n", w, peer, msgs["edgesim"] / best_msgs, cpu["edgesim"] / cpu[best], best
            }
        }' "$RESULTS"
done
