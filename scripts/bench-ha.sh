# `scripts/bench ha`, sourced by scripts/bench (its helpers: die, require_int,
# make_work_dir, build_load_tools, wait_status, status_field, stop_scale_bench).
#
# Three coordinators on one PostgreSQL database (a throwaway cluster from
# scripts/pg-cluster; the second and third made by `fabu-coordinator join`),
# FABU_BENCH_HA_AGENTS simulated agents (fabu-loadgen, default 5,000) spread
# over them, in their long poll, and a release rolling out to them in waves
# of one host more each, 20 s apart (between_waves). Then FABU_BENCH_RUNS
# times (default 5), once a wave is done: the coordinator holding the engine
# lease is killed (SIGKILL) half a second before the next wave is due, so
# that only another coordinator can start it. Measured from the kill: until
# another holds the lease (the leases row names it), until the next wave is
# started (the rollout's current wave moves: the next wave decision, made by
# the new holder's sweep), and until every simulated agent is in a long poll
# again (those of the dead coordinator moved to another). The dead one is
# started again on its port before the next kill.
# Goals (docs/ha.md): the next wave decision <= 10 s after the kill; all
# agents back within 30 s.

# Milliseconds of the wall clock, without starting a process (bash's EPOCHREALTIME).
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  echo $((10#$t / 1000))
}

bench_ha() {
  local agents=${FABU_BENCH_HA_AGENTS:-5000} runs=${FABU_BENCH_RUNS:-5}
  timeout_s=${FABU_BENCH_TIMEOUT:-300}
  require_int FABU_BENCH_HA_AGENTS "$agents" 3 30000
  require_int FABU_BENCH_RUNS "$runs" 1 15
  require_int FABU_BENCH_TIMEOUT "$timeout_s" 30 3600
  command -v psql >/dev/null || die "psql is missing: run scripts/bootstrap (postgresql)"
  make_work_dir
  chmod 755 "$work"
  trap 'rc=$?; stop_scale_bench; "$repo/scripts/pg-cluster" stop "$work/pg" >/dev/null 2>&1 || true; (exit "$rc"); cleanup' EXIT
  local build=${FABU_BENCH_BUILD:-$repo/build-bench}
  [[ -n ${FABU_BENCH_BUILD:-} ]] || build_load_tools "$build"
  local fabu="$build/coordinator/cli/fabu" coordinator="$build/coordinator/fabu-coordinator"
  local loadgen="$build/tests/load/fabu-loadgen"
  [[ -x $loadgen ]] || die "$loadgen is missing"
  ulimit -Sn $((agents + 500)) 2>/dev/null || die "cannot raise the open-file limit to $((agents + 500))"
  cd "$work"

  echo "bench: a PostgreSQL 15 cluster (scripts/pg-cluster)" >&2
  "$repo/scripts/pg-cluster" start "$work/pg" >pg.env 2>pg.err || die "pg-cluster: $(cat pg.err)"
  local server_url password
  server_url=$(sed -n 's/^FABU_TEST_STORE=//p' pg.env)
  password=$(sed -n 's/^FABU_TEST_STORE_PASSWORD_FILE=//p' pg.env)
  local db_url=${server_url%/postgres}/fabu
  sql() { PGPASSWORD=$(cat "$password") psql -X -q -t -A "$1" -c "$2"; }
  sql "$server_url" "CREATE DATABASE fabu TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'" ||
    die "creating the database failed"

  "$coordinator" init --data c1 --store-url "$db_url" --store-password-file "$password" \
    --agent-certificates optional >init.out || die "init failed"
  local admin
  admin=$(tail -n 1 init.out)
  "$fabu" keygen --out pub >/dev/null 2>&1
  "$coordinator" trust add --data c1 pub.pub >/dev/null
  "$coordinator" join --data c2 --from c1 >/dev/null || die "join failed"
  "$coordinator" join --data c3 --from c1 >/dev/null || die "join failed"
  local -a ports=() pids=()
  local i
  # serve_on I PORT: coordinator I (1..3) on 127.0.0.1:PORT (0: any), its pid in pids[I].
  serve_on() {
    local n=$1 port=$2 tries=0
    rm -f "c$n/coordinator.port"
    FABU_LOG_LEVEL=warn "$coordinator" serve --data "c$n" --listen "127.0.0.1:$port" \
      >>"serve-$n.out" 2>>"serve-$n.log" &
    pids[n]=$!
    scale_pids+=("${pids[n]}")
    until [[ -s c$n/coordinator.port ]]; do
      ((tries++ < 200)) || die "coordinator $n did not start: $(tail -5 "serve-$n.log")"
      sleep 0.05
    done
    ports[n]=$(cat "c$n/coordinator.port")
  }
  for i in 1 2 3; do serve_on "$i" 0; done
  local servers="https://127.0.0.1:${ports[1]},https://127.0.0.1:${ports[2]},https://127.0.0.1:${ports[3]}"
  export FABU_SERVER=$servers FABU_CA=$work/c1/ca.pem
  local token
  token=$(FABU_TOKEN=$admin timeout 60 "$fabu" enroll-token create \
    --labels env=production,app=bench-ha --uses "$agents" --ttl 1h) ||
    die "enroll-token create failed"
  echo "bench: $agents simulated agents over 3 coordinators (fabu-loadgen)" >&2
  local status="$work/loadgen.status"
  "$loadgen" --server "$servers" --ca "$FABU_CA" --agents "$agents" --name-prefix ha- \
    --enroll-token "$token" --credentials "$work/credentials" --poll-wait 30 \
    --run-seconds $((timeout_s * (runs + 2))) --skip-download --connect-rate 1000 \
    --backoff-initial 0.5 --backoff-cap 2 \
    --status-file "$status" --report-json "$work/loadgen.json" >"$work/loadgen.out" \
    2>"$work/loadgen.err" &
  local loadgen_pid=$!
  scale_pids+=("$loadgen_pid")
  wait_status "$status" polling "$agents" "$timeout_s" "$loadgen_pid"

  # The release: waves of 1, 2, ... hosts (one more each), 20 s apart, so a
  # wave is due at a known second and only the lease holder's sweep starts it.
  echo "bench: a release to them in waves 20 s apart" >&2
  local rm_token approver_token
  rm_token=$(FABU_TOKEN=$admin timeout 60 "$fabu" user add bench.rm --role release_manager) ||
    die "user add failed"
  approver_token=$(FABU_TOKEN=$admin timeout 60 "$fabu" user add bench.approver --role approver) ||
    die "user add failed"
  as_rm() { FABU_TOKEN=$rm_token timeout 120 "$fabu" "$@"; }
  as_approver() { FABU_TOKEN=$approver_token timeout 120 "$fabu" "$@"; }
  mkdir -p app && echo "bench ha" >app/hello.txt
  "$fabu" pack build --name bench-ha --version V1.0.0.1 --from app --key pub.key --out app.fabu \
    >/dev/null 2>&1 || die "pack build failed"
  local package release waves="" w
  package=$(as_rm package upload app.fabu) || die "package upload failed"
  for ((w = 1; w <= runs + 3; w++)); do waves+="\"$w\", "; done
  cat >plan.json <<PLAN
{"title": "bench ha", "product": "bench-ha", "version": "V1.0.0.1",
 "category": "emergency", "change_refs": ["CHG-1"], "packages": ["$package"],
 "targets": {"selector": "app=bench-ha"}, "reviewers": ["bench.approver"],
 "plan": {"purpose": "p", "scope": "s", "participants": "p", "communication": "c",
          "work_plan": "w", "follow_up": "f", "rollback_plan": "r", "known_issues": "k",
          "baseline": "b"},
 "golive": {"window": {"start": "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)",
                       "end": "$(date -u -d '+3 hours' +%Y-%m-%dT%H:%M:%SZ)"},
            "waves": [$waves"100%"], "max_failures": "10%", "between_waves": "20s",
            "host_timeout": "10m", "auto_rollback": false}}
PLAN
  release=$(as_rm release create --file plan.json) || die "release create failed"
  as_rm release submit "$release" >/dev/null || die "release submit failed"
  as_approver release approve "$release" >/dev/null || die "release approve failed"
  # No test hosts: an emergency release whose test is waived (procedure §6.2.3).
  as_approver release accept "$release" --waive-test --reason "benchmark: no test hosts" \
    >/dev/null || die "release accept failed"
  as_rm release schedule "$release" >/dev/null || die "release schedule failed"
  as_rm release start "$release" >/dev/null || die "release start failed"
  # rollout_state: "CURRENT_WAVE WAVE_DONE_AT" of the release's rollout.
  rollout_state() {
    sql "$db_url" "SELECT current_wave || ' ' || wave_done_at FROM rollouts WHERE release_id = '$release'"
  }

  : >kills.txt
  local run holder pid victim t0 t_lease t_back t_wave now deadline state wave done_at due_ms
  for ((run = 1; run <= runs; run++)); do
    # Until a wave is done whose next is due (20 s after) more than half a
    # second from now.
    deadline=$((SECONDS + 180))
    for (( ; ; )); do
      ((SECONDS < deadline)) || die "run $run: no wave ended in time to kill before the next ($state)"
      state=$(rollout_state) && read -r wave done_at <<<"$state" || die "no rollout of $release"
      due_ms=$(((done_at + 20) * 1000))
      ((done_at > 0 && $(now_ms) < due_ms - 500)) && break
      sleep 0.1
    done
    while (($(now_ms) < due_ms - 500)); do sleep 0.01; done
    holder=$(sql "$db_url" "SELECT holder FROM leases WHERE name = 'engine'")
    pid=${holder#*:}
    pid=${pid%%:*}
    victim=0
    for i in 1 2 3; do [[ ${pids[i]} == "$pid" ]] && victim=$i; done
    ((victim > 0)) || die "the lease holder $holder is none of the three coordinators"
    t0=$(now_ms)
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 60))
    t_lease=""
    t_back=""
    t_wave=""
    # Polled every 20 ms: the lease row, the rollout's current wave, and the
    # loadgen's count of agents in a long poll (its status file, written
    # every half second).
    until [[ -n $t_lease && -n $t_back && -n $t_wave ]]; do
      ((SECONDS < deadline)) || die "run $run: after 60 s: lease '$(sql "$db_url" \
        "SELECT holder FROM leases WHERE name = 'engine'")', $(cat "$status")"
      now=$(now_ms)
      if [[ -z $t_lease ]]; then
        holder=$(sql "$db_url" "SELECT holder FROM leases WHERE name = 'engine'")
        [[ -n $holder && $holder != *":$pid:"* ]] && t_lease=$now
      fi
      if [[ -z $t_wave ]]; then
        state=$(rollout_state)
        [[ -n $state && ${state%% *} != "$wave" ]] && t_wave=$now
      fi
      # Counted once the dead one's agents dropped out of their polls and all came back.
      if [[ -z $t_back ]] && ((now - t0 > 1000)) &&
        (($(status_field "$status" polling) >= agents)); then
        t_back=$now
      fi
      sleep 0.02
    done
    printf 'kill %d %d.%03d %d.%03d %d.%03d\n' "$victim" $(((t_lease - t0) / 1000)) \
      $(((t_lease - t0) % 1000)) $(((t_back - t0) / 1000)) $(((t_back - t0) % 1000)) \
      $(((t_wave - t0) / 1000)) $(((t_wave - t0) % 1000)) >>kills.txt
    echo "bench: run $run: $(tail -n 1 kills.txt)" >&2
    serve_on "$victim" "${ports[victim]}"
    sleep 2
  done
  report_ha kills.txt "$agents" "$work/loadgen.json" "$loadgen_pid"
}

# Prints the failover figures and their goals.
report_ha() {
  local file=$1 agents=$2
  kill "$4" 2>/dev/null || true
  wait "$4" 2>/dev/null || true
  python3 - "$file" "$agents" "$3" <<'PY'
import json, statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.startswith("kill ")]
lease = [float(r[2]) for r in rows]
back = [float(r[3]) for r in rows]
wave = [float(r[4]) for r in rows]
agents = int(sys.argv[2])
moves = "?"
try:
    moves = json.load(open(sys.argv[3])).get("server_moves", "?")
except (OSError, ValueError):
    pass
print(f"three coordinators on PostgreSQL 15, {agents} simulated agents, {len(rows)} kills of the lease holder")
print(f"  takeover (SIGKILL -> another holds the lease): median {statistics.median(lease):.2f} s, "
      f"max {max(lease):.2f} s   goal <= 10 s: {'ok' if max(lease) <= 10 else 'MISS'}")
print(f"  next wave decision (SIGKILL -> the next wave started by another; it was due 0.5 s "
      f"after the kill): median {statistics.median(wave):.2f} s, max {max(wave):.2f} s   "
      f"goal <= 10 s: {'ok' if max(wave) <= 10 else 'MISS'}")
print(f"  every agent in a long poll again:              median {statistics.median(back):.2f} s, "
      f"max {max(back):.2f} s   goal <= 30 s: {'ok' if max(back) <= 30 else 'MISS'}")
print(f"  agents' moves to another coordinator (loadgen): {moves}")
PY
}
