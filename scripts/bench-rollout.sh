# shellcheck shell=bash
# `scripts/bench rollout`, sourced by scripts/bench (which provides die,
# require_int, make_work_dir, cleanup, generate_tree, now_ms and $repo).
#
# A release of a ~10 MiB package to 100 real agents enrolled on this machine:
# the wall time from just before `fabu release start` to the coordinator's
# receipt of the last host's `succeeded` event; beside, in the same run, the
# no-network limit (a shell loop doing each host's work two hosts at a time)
# and Ansible (ansible-playbook with its default forks) doing the same work on
# 100 `ansible_connection=local` inventory hosts: copy the package, check its
# SHA-256, extract it into releases/<version>, switch the `current` link, run
# the health check. Goals (docs/benchmarks.md): fabu >= 10x faster than
# Ansible; one wave <= 1.5x and waves 1, 10%, 100% <= 1.8x the limit.
# shellcheck disable=SC2154 # repo and work are set by scripts/bench

# The pids of every process bench_rollout started; only these are killed.
rollout_pids=()
stop_rollout_bench() {
  local i
  # Newest first: the agents before the coordinator they poll.
  for ((i = ${#rollout_pids[@]} - 1; i >= 0; i--)); do kill "${rollout_pids[i]}" 2>/dev/null || true; done
  for ((i = ${#rollout_pids[@]} - 1; i >= 0; i--)); do wait "${rollout_pids[i]}" 2>/dev/null || true; done
  rollout_pids=()
}

# cpu_ticks PID...: user + system clock ticks of the processes and of their
# waited-for children (hooks), summed; 0 for a process that is gone.
cpu_ticks() {
  local pid total=0 line
  for pid in "$@"; do
    line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # Fields after the ")" that ends the command name: 14-17 are
    # utime stime cutime cstime.
    line=${line##*) }
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $line
    total=$((total + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$total"
}

bench_rollout() {
  local mib=${FABU_BENCH_MIB:-10} runs=${FABU_BENCH_RUNS:-1} seed=${FABU_BENCH_SEED:-20261125}
  local agents=${FABU_BENCH_AGENTS:-100} waves_row=${FABU_BENCH_WAVES:-1}
  local nosync_row=${FABU_BENCH_NOSYNC:-1} ansible_rows=${FABU_BENCH_ANSIBLE:-1}
  local prebuilt=${FABU_BENCH_BUILD:-}
  timeout_s=${FABU_BENCH_TIMEOUT:-900}
  require_int FABU_BENCH_MIB "$mib" 1 256
  require_int FABU_BENCH_RUNS "$runs" 1 5
  require_int FABU_BENCH_SEED "$seed" 0 4294967295
  require_int FABU_BENCH_TIMEOUT "$timeout_s" 10 3600
  require_int FABU_BENCH_AGENTS "$agents" 1 500
  require_int FABU_BENCH_WAVES "$waves_row" 0 1
  require_int FABU_BENCH_NOSYNC "$nosync_row" 0 1
  require_int FABU_BENCH_ANSIBLE "$ansible_rows" 0 1
  if ((ansible_rows)); then
    command -v ansible-playbook >/dev/null || die "ansible-playbook is missing: run scripts/bootstrap"
  fi
  command -v sqlite3 >/dev/null || die "the sqlite3 command line tool is missing"
  command -v zstd >/dev/null || die "zstd is missing: run scripts/bootstrap"
  [[ -x /usr/bin/time ]] || die "GNU time is missing: run scripts/bootstrap (package 'time')"
  # Every release leaves a download and a tree per agent; Ansible a copy and a tree per host.
  local rows=$((2 + waves_row + nosync_row)) parent=${FABU_BENCH_DIR:-/tmp} need avail
  need=$((agents * mib * 3 * (rows + 1) * runs + 1024))
  mkdir -p "$parent"
  avail=$(($(df -Pk "$parent" | awk 'NR == 2 { print $4 }') / 1024))
  ((avail >= need)) || die "$parent has $avail MiB free, the run needs about $need MiB"
  make_work_dir
  # cleanup exits with the status it finds in $?: keep the script's, not the kill's.
  trap 'rollout_rc=$?; stop_rollout_bench; (exit "$rollout_rc"); cleanup' EXIT

  local build="$repo/build-bench"
  if [[ -n $prebuilt ]]; then
    # Binaries built elsewhere (another commit's, to compare): used as they are.
    build=$(cd "$prebuilt" && pwd) || die "FABU_BENCH_BUILD: no directory $prebuilt"
    echo "bench: using the binaries in $build (FABU_BENCH_BUILD)" >&2
  else
    local -a launcher=()
    if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
    export CCACHE_BASEDIR=$repo CCACHE_NOHASHDIR=1
    echo "bench: building fabu, fabu-coordinator and fabu-agent (Release) in $build" >&2
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DFABU_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
    cmake --build "$build" --target fabu fabu-coordinator fabu-agent -j"$(nproc)" \
      >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; die "building failed (log above)"; }
  fi
  local fabu="$build/coordinator/cli/fabu" coordinator="$build/coordinator/fabu-coordinator"
  local agent="$build/agent/fabu-agent"
  [[ -x $fabu && -x $coordinator && -x $agent ]] || die "$build lacks fabu, fabu-coordinator or fabu-agent"
  results="$work/results.txt"
  : >"$results"
  cd "$work" || die "cannot enter $work"

  # --- A coordinator on loopback, its people, the publisher key.
  "$coordinator" init --data coord >init.out
  local admin
  admin=$(tail -n 1 init.out)
  "$fabu" keygen --out pub >/dev/null 2>&1
  "$coordinator" trust add --data coord pub.pub >/dev/null
  # serve_coordinator ADDRESS [ENV...]: starts the coordinator, waits for its port file.
  local coord_pid
  serve_coordinator() {
    local address=$1 tries=0
    shift
    rm -f coord/coordinator.port
    env "$@" "$coordinator" serve --data coord --listen "$address" >>serve.out 2>>serve.log &
    rollout_pids+=($!)
    coord_pid=$!
    until [[ -s coord/coordinator.port ]]; do
      ((tries++ < 100)) || die "the coordinator did not start: $(cat serve.log)"
      sleep 0.1
    done
  }
  serve_coordinator 127.0.0.1:0
  FABU_SERVER="https://127.0.0.1:$(cat coord/coordinator.port)"
  export FABU_SERVER FABU_CA=$work/coord/ca.pem
  local rm_token approver_token tester_token
  rm_token=$(FABU_TOKEN=$admin "$fabu" user add bench.rm --role release_manager)
  approver_token=$(FABU_TOKEN=$admin "$fabu" user add bench.approver --role approver)
  tester_token=$(FABU_TOKEN=$admin "$fabu" user add bench.tester --role tester)
  ro_rm() { FABU_TOKEN=$rm_token timeout 60 "$fabu" "$@"; }
  ro_sql() { sqlite3 -readonly -separator ' ' "file:$work/coord/coordinator.db?mode=ro" "$1"; }

  # --- The application: a generated tree and a health check, packed once per release.
  echo "bench: generating a ${mib} MiB tree (seed $seed)" >&2
  local summary
  summary="$(generate_tree "$mib" "$work/tree" "$seed")"
  echo "bench: tree: $summary" >&2
  mkdir -p hooks
  cat >hooks/health_check <<'HOOK'
#!/bin/sh
# The application is healthy when its release is the one `current` names and
# its libraries are there.
[ "$(readlink "$FABU_APPS_ROOT/$FABU_APP/current")" = "releases/$FABU_VERSION" ] || exit 1
[ -d "$FABU_RELEASE_DIR/lib" ] || exit 1
echo "$FABU_APP $FABU_VERSION healthy"
HOOK
  chmod 755 hooks/health_check
  local app=bench-rollout
  # One version per release started: V1.0.0.1, .2, ...; all packed and uploaded untimed.
  local releases_total=$(((1 + waves_row) * runs + nosync_row)) k
  local -a package_ids=()
  for ((k = 1; k <= releases_total; k++)); do
    "$fabu" pack build --name "$app" --version "V1.0.0.$k" --from tree --hooks hooks \
      --key pub.key --compression zstd --out "pkg-$k.fabu" >/dev/null 2>&1 || die "pack build failed"
    package_ids[k]=$(ro_rm package upload "pkg-$k.fabu") || die "package upload failed"
  done
  echo "sizes $(stat -c %s pkg-1.fabu)" >>"$results"

  # --- $agents agents, enrolled and running.
  local token
  token=$(ro_rm enroll-token create --labels "env=production,app=$app" --uses "$agents")
  echo "bench: enrolling and starting $agents agents" >&2
  local -a agent_pids=()
  local i name home
  for ((i = 1; i <= agents; i++)); do
    name=$(printf 'host-%03d' "$i")
    home="$work/hosts/$name"
    mkdir -p "$home"
    timeout 60 "$agent" enroll --server "$FABU_SERVER" --ca "$FABU_CA" --token "$token" \
      --name "$name" --data "$home/data" --apps-root "$home/apps" --trust "$work/pub.pub" \
      >"$home/enroll.log" 2>&1 || { cat "$home/enroll.log" >&2; die "enrolling $name failed"; }
    # 100 agents on 2 cores: a 30 s long poll (about 3 polls/s in all while idle), one
    # health-check attempt, and a short backoff cap so that a refused request under load
    # does not leave an agent asleep for a minute.
    sed -i 's/"health_check_attempts": [0-9]*/"health_check_attempts": 1/;
            s/"health_check_delay_seconds": [0-9]*/"health_check_delay_seconds": 0/;
            s/"poll_wait_seconds": [0-9]*/"poll_wait_seconds": 30/;
            s/"backoff_initial_seconds": [0-9]*/"backoff_initial_seconds": 1/;
            s/"backoff_cap_seconds": [0-9]*/"backoff_cap_seconds": 5/' "$home/data/agent.json"
  done
  # run_agents [ENV...]: starts every enrolled agent.
  run_agents() {
    agent_pids=()
    for ((i = 1; i <= agents; i++)); do
      home="$work/hosts/$(printf 'host-%03d' "$i")"
      env "$@" "$agent" run --data "$home/data" </dev/null >>"$home/agent.out" \
        2>>"$home/agent.log" &
      rollout_pids+=($!)
      agent_pids+=($!)
    done
  }
  run_agents

  # --- Ansible: 100 local inventory hosts, each with its own root, default forks.
  local sha
  mkdir -p ansible/tmp
  tar -xOf pkg-1.fabu payload.tar.zst >ansible/package.tar.zst
  sha=$(sha256sum ansible/package.tar.zst | cut -d' ' -f1)
  echo "payload $(stat -c %s ansible/package.tar.zst)" >>"$results"
  cat >ansible/ansible.cfg <<CFG
[defaults]
# Everything ansible-playbook writes stays in the work dir. The forks are left
# at their default (5). The per-task timing callback is the only addition.
inventory = $work/ansible/inventory.ini
local_tmp = $work/ansible/tmp/local
remote_tmp = $work/ansible/tmp/remote
retry_files_enabled = False
host_key_checking = False
interpreter_python = /usr/bin/python3
callbacks_enabled = ansible.posix.profile_tasks
CFG
  # The playbook does what the agent does, minus the signature: the facts are not
  # gathered (nothing needs them), and the digest is checked on the host.
  cat >ansible/deploy.yml <<'PLAY'
- name: Deploy a release
  hosts: fleet
  gather_facts: false
  vars:
    app_dir: "{{ root }}/apps/{{ app }}"
    release_dir: "{{ app_dir }}/releases/{{ version }}"
  tasks:
    - name: Make the release directory
      ansible.builtin.file:
        path: "{{ release_dir }}"
        state: directory
        mode: "0755"
    - name: Copy the package
      ansible.builtin.copy:
        src: "{{ package }}"
        dest: "{{ root }}/{{ version }}.tar.zst"
        mode: "0644"
    - name: Compute its SHA-256
      ansible.builtin.stat:
        path: "{{ root }}/{{ version }}.tar.zst"
        checksum_algorithm: sha256
      register: copied
    - name: Check its SHA-256
      ansible.builtin.assert:
        that: copied.stat.checksum == sha256
        quiet: true
    - name: Extract it
      ansible.builtin.unarchive:
        src: "{{ root }}/{{ version }}.tar.zst"
        dest: "{{ release_dir }}"
        remote_src: true
    - name: Switch current
      ansible.builtin.file:
        src: "releases/{{ version }}"
        dest: "{{ app_dir }}/current"
        state: link
        force: true
    - name: Run the health check
      ansible.builtin.command: "{{ app_dir }}/current/hooks/health_check"
      environment:
        FABU_APP: "{{ app }}"
        FABU_VERSION: "{{ version }}"
        FABU_RELEASE_DIR: "{{ release_dir }}"
        FABU_APPS_ROOT: "{{ root }}/apps"
      changed_when: false
PLAY

  # rollout_walk VERSION PACKAGE WAVES: sets $walked to a release of $app V to every
  # agent, walked to scheduled; WAVES is a JSON list; max_failures 0, no pause.
  local walked=""
  rollout_walk() {
    local version=$1 package=$2 waves=$3 release
    cat >"plan-$version.json" <<PLAN
{"title": "bench rollout $version", "product": "$app", "version": "$version",
 "category": "emergency", "change_refs": ["CHG-1"], "packages": ["$package"],
 "targets": {"selector": "app=$app"}, "reviewers": ["bench.approver"],
 "plan": {"purpose": "p", "scope": "s", "participants": "p", "communication": "c",
          "work_plan": "w", "follow_up": "f", "rollback_plan": "r", "known_issues": "k",
          "baseline": "b"},
 "golive": {"window": {"start": "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)",
                       "end": "$(date -u -d '+3 hours' +%Y-%m-%dT%H:%M:%SZ)"},
            "waves": $waves, "max_failures": "0", "between_waves": "0",
            "host_timeout": "10m", "auto_rollback": false}}
PLAN
    release=$(ro_rm release create --file "plan-$version.json") || die "release create failed"
    ro_rm release submit "$release" >/dev/null || die "release submit failed"
    FABU_TOKEN=$approver_token timeout 60 "$fabu" release approve "$release" >/dev/null ||
      die "release approve failed"
    # No host is labelled env=test: the release is an emergency one whose
    # test is waived (procedure §6.2.3), the only way to accept it without a
    # test deployment. Nothing of the rollout measured here depends on it.
    FABU_TOKEN=$approver_token timeout 60 "$fabu" release accept "$release" --waive-test \
      --reason "benchmark: no test hosts" >/dev/null || die "release accept failed"
    ro_rm release schedule "$release" >/dev/null || die "release schedule failed"
    walked=$release
  }

  # fabu_row LABEL WAVES RUN: one timed rollout.
  local next_version=1
  fabu_row() {
    local label=$1 waves=$2 run=$3 version="V1.0.0.$next_version" release t0 t1 done_n
    local deadline c0 a0 c1 a1 state
    rollout_walk "$version" "${package_ids[next_version]}" "$waves"
    release=$walked
    next_version=$((next_version + 1))
    sync
    echo "bench: run $run: fabu release start $release ($label, waves $waves, $agents hosts)" >&2
    c0=$(cpu_ticks "$coord_pid")
    a0=$(cpu_ticks "${agent_pids[@]}")
    t0=$(now_ms)
    ro_rm release start "$release" >/dev/null || die "release start failed"
    t1=$(now_ms)
    deadline=$((SECONDS + timeout_s))
    # Every 100 ms, one read-only count in the store.
    while :; do
      done_n=$(ro_sql "SELECT COUNT(*) FROM deployments WHERE release_id = '$release'
                       AND final = 1 AND result = 'succeeded'")
      ((done_n < agents)) || break
      if ro_sql "SELECT 1 FROM deployments WHERE release_id = '$release' AND final = 1
                 AND result != 'succeeded' LIMIT 1" | grep -q 1; then
        ro_sql "SELECT host, step, result, message FROM deployments
                WHERE release_id = '$release' AND result != 'succeeded'" >&2
        die "$release: a host failed"
      fi
      ((SECONDS < deadline)) || die "$release: $done_n of $agents hosts succeeded in ${timeout_s}s"
      sleep 0.1
    done
    c1=$(cpu_ticks "$coord_pid")
    a1=$(cpu_ticks "${agent_pids[@]}")
    # The release itself is `deployed` once the engine saw the last wave through.
    until [[ $(ro_sql "SELECT state FROM releases WHERE id = '$release'") == deployed ]]; do
      ((SECONDS < deadline)) || die "$release did not reach deployed"
      sleep 0.1
    done
    echo "fabu $label $run $t0 $t1 $((c1 - c0)) $((a1 - a0)) $(getconf CLK_TCK)" >>"$results"
    ro_sql "SELECT '$label', $run, d.host, d.wave, e.step,
              CAST(ROUND((julianday(e.received) - 2440587.5) * 86400000) AS INTEGER)
            FROM deployment_events e JOIN deployments d ON d.id = e.deployment
            WHERE d.release_id = '$release'" | sed 's/^/event /' >>"$results"
    state=$(readlink "hosts/host-001/apps/$app/current")
    [[ $state == "releases/$version" ]] || die "host-001: current -> $state, not $version"
  }

  # ansible_row RUN: one timed ansible-playbook over $agents fresh host roots.
  ansible_row() {
    local run=$1 t0 t1
    local dir="$work/ansible/run-$run" out="$work/ansible/run-$run.log"
    mkdir -p "$dir"
    {
      echo "[fleet]"
      for ((i = 1; i <= agents; i++)); do
        name=$(printf 'host-%03d' "$i")
        mkdir -p "$dir/$name"
        echo "$name ansible_connection=local root=$dir/$name"
      done
      echo
      echo "[fleet:vars]"
      echo "app=$app"
      echo "version=V1.0.0.1"
      echo "package=$work/ansible/package.tar.zst"
      echo "sha256=$sha"
    } >ansible/inventory.ini
    sync
    echo "bench: run $run: ansible-playbook, $agents local hosts, default forks" >&2
    t0=$(now_ms)
    ANSIBLE_CONFIG=$work/ansible/ansible.cfg /usr/bin/time -o "$work/ansible/time-$run" \
      -f '%e %U %S' timeout "$timeout_s" ansible-playbook ansible/deploy.yml >"$out" 2>&1 ||
      { tail -40 "$out" >&2; die "ansible-playbook failed or exceeded ${timeout_s}s"; }
    t1=$(now_ms)
    grep -q "ok=7 .*failed=0" "$out" || { tail -40 "$out" >&2; die "ansible: not every task ok"; }
    [[ $(grep -c "ok=7 .*failed=0" "$out") -eq $agents ]] ||
      { tail -40 "$out" >&2; die "ansible: not every host ok"; }
    [[ $(readlink "$dir/host-001/apps/$app/current") == releases/V1.0.0.1 ]] ||
      die "ansible: host-001 current not switched"
    echo "ansible $run $t0 $t1 $(cat "$work/ansible/time-$run")" >>"$results"
    # profile_tasks: "Task name ----- 12.34s" in the recap.
    sed -n 's/^\(.*[^ ]\) -\{3,\} \([0-9.]*\)s$/\2 \1/p' "$out" |
      sed "s/^/atask $run /" >>"$results"
  }

  # The no-network limit: each host's work done by a shell script, two hosts at a
  # time (the machine's two cores): copy the payload, check its SHA-256, extract it
  # into releases/<version>, switch `current` (a rename, as fabu does), run the hook.
  cat >limit-host.sh <<'HOST'
#!/bin/sh
# limit-host.sh ROOT APP VERSION PACKAGE SHA256
set -eu
root=$1 app=$2 version=$3 package=$4 sha=$5
app_dir=$root/apps/$app
release_dir=$app_dir/releases/$version
mkdir -p "$release_dir"
cp "$package" "$root/$version.tar.zst"
echo "$sha  $root/$version.tar.zst" | sha256sum --check --quiet --strict
tar --zstd -xf "$root/$version.tar.zst" -C "$release_dir"
ln -s "releases/$version" "$app_dir/current.new"
mv -T "$app_dir/current.new" "$app_dir/current"
FABU_APP=$app FABU_VERSION=$version FABU_RELEASE_DIR=$release_dir FABU_APPS_ROOT=$root/apps \
  "$app_dir/current/hooks/health_check" >/dev/null
HOST
  chmod 755 limit-host.sh

  # limit_row RUN: one timed pass of limit-host.sh over $agents fresh roots, two at a time.
  limit_row() {
    local run=$1 t0 t1 dir="$work/limit/run-$1"
    mkdir -p "$dir"
    for ((i = 1; i <= agents; i++)); do mkdir -p "$dir/$(printf 'host-%03d' "$i")"; done
    sync
    echo "bench: run $run: the no-network limit, $agents roots, two at a time" >&2
    t0=$(now_ms)
    (cd "$dir" && printf '%s\n' host-* |
      /usr/bin/time -o "$work/limit/time-$run" -f '%e %U %S' timeout "$timeout_s" \
        xargs -P 2 -I{} "$work/limit-host.sh" "$dir/{}" "$app" V1.0.0.1 \
        "$work/ansible/package.tar.zst" "$sha") || die "the no-network limit failed"
    t1=$(now_ms)
    [[ $(readlink "$dir/host-001/apps/$app/current") == releases/V1.0.0.1 ]] ||
      die "limit: host-001 current not switched"
    echo "limit $run $t0 $t1 $(cat "$work/limit/time-$run")" >>"$results"
  }

  # curl_row RUN: one package download alone with curl over TLS, to a file, as an
  # agent would (host-001's certificate and credential, a package it was assigned), 3 times.
  curl_row() {
    local run=$1 k t0 t1 url
    url="$FABU_SERVER/api/v1/agent/packages/${package_ids[1]}"
    for ((k = 1; k <= 3; k++)); do
      rm -f "$work/curl.out"
      sync
      t0=$(now_ms)
      curl -sSf --cacert "$FABU_CA" --cert "$work/hosts/host-001/data/client.pem" \
        -H "Authorization: Bearer $(cat "$work/hosts/host-001/data/credential")" \
        -o "$work/curl.out" "$url" || die "curl $url failed"
      t1=$(now_ms)
      echo "curl $run $((t1 - t0))" >>"$results"
    done
    [[ $(stat -c %s "$work/curl.out") -eq $(stat -c %s pkg-1.fabu) ]] || die "curl: short download"
  }

  echo "bench: $agents agents idle in their long poll for 5 s" >&2
  sleep 5
  local run step order
  for ((run = 1; run <= runs; run++)); do
    # Fabu on both sides of the limit (and of Ansible), so a neighbour's compile
    # burst is seen by both.
    order="one limit"
    if ((ansible_rows)); then order+=" ansible"; fi
    if ((waves_row)); then order+=" waves"; fi
    if ((run % 2 == 0)); then order="limit one${order#one limit}"; fi
    for step in $order; do
      case $step in
        one) fabu_row one '["100%"]' "$run" ;;
        waves) fabu_row waves '["1", "10%", "100%"]' "$run" ;;
        limit) limit_row "$run" ;;
        ansible) ansible_row "$run" ;;
      esac
    done
    # After the rows: host-001 has been assigned package 1 by then.
    curl_row "$run"
  done
  if ((nosync_row)); then
    # Diagnosis, not the goal: the same rollout with fsync, fdatasync, syncfs and sync
    # made no-ops in the coordinator and every agent (an LD_PRELOAD shim), to show what
    # the durable writes cost on this disk. Ansible makes none of these calls.
    cat >nosync.c <<'C'
int fsync(int fd) { (void)fd; return 0; }
int fdatasync(int fd) { (void)fd; return 0; }
int syncfs(int fd) { (void)fd; return 0; }
void sync(void) {}
C
    cc -shared -fPIC -O2 -o nosync.so nosync.c || die "cannot build the no-sync shim"
    local port
    port=$(cat coord/coordinator.port)
    stop_rollout_bench
    serve_coordinator "127.0.0.1:$port" LD_PRELOAD="$work/nosync.so"
    run_agents LD_PRELOAD="$work/nosync.so"
    echo "bench: diagnosis: coordinator and agents restarted without syncs; idle 5 s" >&2
    sleep 5
    fabu_row nosync '["100%"]' 1
  fi
  stop_rollout_bench
  report_rollout "$results" "$mib" "$runs" "$agents" "$summary"
}

# Prints the figures and the goal from the raw measurements.
report_rollout() {
  python3 - "$@" <<'EOF'
import statistics, sys
from collections import defaultdict

path, mib, runs, agents, summary = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                    int(sys.argv[4]), sys.argv[5])
fabu = defaultdict(dict)      # label -> run -> (t0, t1, coord_cpu_s, agents_cpu_s)
events = defaultdict(lambda: defaultdict(dict))  # (label, run) -> host -> step -> ms
waves = {}                    # (label, run, host) -> wave
ansible = {}                  # run -> (wall_s, user_s, sys_s)
limit = {}                    # run -> (wall_s, user_s, sys_s)
curl = []                     # ms of each lone curl download
atasks = defaultdict(list)    # task -> [s]
for line in open(path):
    f = line.split()
    if f[0] == "sizes":
        pkg = int(f[1])
    elif f[0] == "payload":
        payload = int(f[1])
    elif f[0] == "fabu":
        tck = int(f[7])
        fabu[f[1]][int(f[2])] = (int(f[3]), int(f[4]), int(f[5]) / tck, int(f[6]) / tck)
    elif f[0] == "event":
        label, run, host, wave, step, ms = f[1], int(f[2]), f[3], int(f[4]), f[5], int(f[6])
        events[(label, run)][host][step] = ms
        waves[(label, run, host)] = wave
    elif f[0] == "ansible":
        ansible[int(f[1])] = ((int(f[3]) - int(f[2])) / 1000, float(f[5]), float(f[6]))
    elif f[0] == "curl":
        curl.append(int(f[2]))
    elif f[0] == "limit":
        limit[int(f[1])] = ((int(f[3]) - int(f[2])) / 1000, float(f[5]), float(f[6]))
    elif f[0] == "atask":
        atasks[" ".join(f[3:])].append(float(f[2]))

MiB = 1 << 20
def verdict(ok):
    return "PASS" if ok else "MISS"

print()
print("fabu rollout benchmark: %d hosts on this machine, %d MiB tree (%s)," % (agents, mib, summary))
print("zstd package %.1f MiB (Ansible copies its payload, %.1f MiB). The machine is shared:"
      % (pkg / MiB, payload / MiB))
print("read the ratios (same run) rather than absolute times.")

def walls(label):
    out = {}
    for run, (t0, t1, cc, ac) in fabu[label].items():
        ev = events[(label, run)]
        out[run] = (max(h["succeeded"] for h in ev.values()) - t0) / 1000
    return out

steps = ["assigned", "downloading", "downloaded", "verified", "installing", "activating",
         "health_checking", "succeeded"]
for label, desc in (("one", "one wave of 100%"), ("waves", "waves 1, 10%, 100%, between_waves 0"),
                    ("nosync", "one wave of 100%, DIAGNOSIS: fsync/fdatasync/syncfs made no-ops")):
    if label not in fabu:
        continue
    w = walls(label)
    print()
    print("== fabu, %s: `fabu release start` -> last host `succeeded` (coordinator receipt)" % desc)
    for run in sorted(w):
        t0, t1, cc, ac = fabu[label][run]
        ev = events[(label, run)]
        first = min(h["assigned"] for h in ev.values()) - t0
        done = sorted(h["succeeded"] - t0 for h in ev.values())
        print("  run %d: %.2f s  (start command %.2f s; first assigned +%.2f s; succeeded: first"
              " %.2f, median %.2f, last %.2f s)" % (run, w[run], (t1 - t0) / 1000, first / 1000,
                                                   done[0] / 1000, statistics.median(done) / 1000,
                                                   done[-1] / 1000))
        print("         CPU: coordinator %.1f s, %d agents %.1f s (with their hooks) = %.0f%% of 2 cores"
              % (cc, agents, ac, 100 * (cc + ac) / (2 * w[run])))
        print("         per host, median / max s:", end="")
        phases = [("start->assigned", None, "assigned"), ("wake", "assigned", "downloading"),
                  ("download", "downloading", "downloaded"), ("verify", "downloaded", "verified"),
                  ("prepare", "verified", "installing"), ("extract+sync", "installing", "activating"),
                  ("activate", "activating", "health_checking"),
                  ("health", "health_checking", "succeeded")]
        for i, (name, a, b) in enumerate(phases):
            d = [(h[b] - (h[a] if a else t0)) / 1000 for h in ev.values() if (a is None or a in h) and b in h]
            if d:
                print("%s %s %.2f/%.2f" % ("\n          " if i == 4 else "", name, statistics.median(d), max(d)), end="")
        print()
        if label == "waves":
            by_wave = defaultdict(list)
            for host, h in ev.items():
                by_wave[waves[(label, run, host)]].append(h)
            for wave in sorted(by_wave):
                hs = by_wave[wave]
                print("         wave %d: %3d hosts, assigned +%.2f s, last succeeded +%.2f s" % (
                    wave, len(hs), (min(h["assigned"] for h in hs) - t0) / 1000,
                    (max(h["succeeded"] for h in hs) - t0) / 1000))

# The waves row's first wave (0: waves are counted from 0 in the store), its
# one host downloading alone.
lone = [(h["downloaded"] - h["downloading"]) / 1000
        for (label, run), ev in events.items() if label == "waves"
        for host, h in ev.items() if waves[(label, run, host)] == 0
        and "downloaded" in h and "downloading" in h]
print()
print("== one download alone, %.1f MiB over loopback TLS, to a file" % (pkg / MiB))
if lone:
    print("  fabu-agent: %.3f s  (the waves row's first host, `downloading` -> `downloaded`:"
          " with its digest, and the extraction that follows the download)" % statistics.median(lone))
if curl:
    print("  curl:       %.3f s  (median of %d, the same URL and credential)" % (
        statistics.median(curl) / 1000, len(curl)))
if lone and curl:
    print("  fabu-agent / curl = %.2fx" % (statistics.median(lone) / (statistics.median(curl) / 1000)))

print()
print("== the no-network limit: each host's work by a shell script, two hosts at a time")
print("   (cp, sha256sum --check, tar --zstd -x, the link renamed, the hook; no sync)")
for run in sorted(limit):
    wall, user, sys_ = limit[run]
    print("  run %d: %.2f s  (CPU user %.1f + sys %.1f s = %.0f%% of 2 cores)" % (
        run, wall, user, sys_, 100 * (user + sys_) / (2 * wall)))

if ansible:
    print()
    print("== Ansible (ansible-playbook, default forks, %d local hosts, gather_facts off)" % agents)
    for run in sorted(ansible):
        wall, user, sys_ = ansible[run]
        print("  run %d: %.2f s  (CPU user %.1f + sys %.1f s = %.0f%% of 2 cores)" % (
            run, wall, user, sys_, 100 * (user + sys_) / (2 * wall)))
    print("  per task (profile_tasks, median over runs, all hosts):")
    for task, xs in sorted(atasks.items(), key=lambda kv: -statistics.median(kv[1])):
        print("    %-40s %7.2f s" % (task, statistics.median(xs)))

rows = (("one", "one wave of 100%", 1.5), ("waves", "waves 1, 10%, 100%", 1.8),
        ("nosync", "(diagnosis) no syncs", None))
print()
print("Goals (docs/benchmarks.md): fabu <= 1.5x the no-network limit with one wave,")
print("<= 1.8x with waves 1, 10%, 100% (fabu's wall time / the limit's, same run).")
l = statistics.median(x[0] for x in limit.values())
for label, desc, goal in rows:
    if label not in fabu:
        continue
    w = walls(label)
    ratios = [w[r] / limit[r][0] for r in sorted(w) if r in limit]
    f = statistics.median(w.values())
    r = statistics.median(ratios)
    print("  %-24s fabu %6.2f s  limit %6.2f s  = %5.2fx  (runs: %s)  %s" % (
        desc, f, l, r, " ".join("%.2fx" % x for x in ratios),
        "(not a goal)" if goal is None else "%s (<= %.1fx)" % (verdict(r <= goal), goal)))
if ansible:
    a = statistics.median(x[0] for x in ansible.values())
    print("Goal: fabu >= 10x faster than Ansible doing the same work.")
    for label, desc, goal in rows:
        if label not in fabu:
            continue
        w = walls(label)
        ratios = [ansible[r][0] / w[r] for r in sorted(w) if r in ansible]
        f = statistics.median(w.values())
        r = statistics.median(ratios)
        print("  %-24s fabu %6.2f s  Ansible %7.2f s  = %5.1fx  (runs: %s)  %s" % (
            desc, f, a, r, " ".join("%.1fx" % x for x in ratios),
            "(not a goal)" if goal is None else verdict(r >= 10)))
print("CPU seconds per host (user + sys; fabu: coordinator + agents with their hooks,")
print("the limit: its shell loop, Ansible: ansible-playbook and its children), less")
print("sensitive to a neighbour's load:")
lcpu = statistics.median((x[1] + x[2]) / agents for x in limit.values())
acpu = statistics.median((x[1] + x[2]) / agents for x in ansible.values()) if ansible else None
for label, desc, goal in rows:
    if label not in fabu:
        continue
    ccpu = statistics.median(x[2] / agents for x in fabu[label].values())
    fcpu = statistics.median((x[2] + x[3]) / agents for x in fabu[label].values())
    print("  %-24s fabu %6.3f s (coordinator %.3f, agents %.3f)  limit %6.3f s%s" % (
        desc, fcpu, ccpu, fcpu - ccpu, lcpu,
        "  Ansible %7.3f s = %5.1fx" % (acpu, acpu / fcpu) if acpu else ""))
EOF
}
