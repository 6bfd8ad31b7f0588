#!/usr/bin/env bash
# A throwaway single-node Ceph RADOS Gateway (S3 API) on loopback, for tests and the bench.
#
#   scripts/rgw.sh up     [--dir D] [--port P] [--mon-port M] [--ram-mib N] [--bucket B]
#   scripts/rgw.sh down   [--dir D]
#   scripts/rgw.sh status [--dir D]
#   scripts/rgw.sh env    [--dir D]          # prints S3_* lines for the running gateway
#
# One ceph-mon, one ceph-osd whose object store is memstore (everything in RAM, capped at
# --ram-mib), no mgr, no authentication between the daemons, every socket on 127.0.0.1; then
# radosgw with the beast frontend on --port and one S3 user with fixed keys (a local throwaway
# store: the keys protect nothing). Needs Debian's radosgw, ceph-mon and ceph-osd
# (`apt-get install --no-install-recommends radosgw ceph-mon ceph-osd`).
# Started ~15 s; ~190 MB RSS idle plus what the OSD holds.
#
# Idempotent: `up` on a directory whose gateway answers returns at once (same env output);
# anything half-started there is stopped and started afresh. `down` stops exactly the PIDs
# recorded in <dir>/pids and removes the directory. The daemons detach, so a gateway outlives
# the shell that started it until `down`.
set -euo pipefail

cmd="${1:-}"
[ $# -gt 0 ] && shift
dir="${RGW_DIR:-${TMPDIR:-/tmp}/edge-upload-rgw}"
port=7480
mon_port=3300
ram_mib=1024
bucket=""
access_key="EDGEUPLOADTESTKEY"
secret_key="edge-upload-test-secret"
region="us-east-1"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --mon-port) mon_port="$2"; shift 2 ;;
    --ram-mib) ram_mib="$2"; shift 2 ;;
    --bucket) bucket="$2"; shift 2 ;;
    *) echo "rgw.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
conf="$dir/ceph.conf"
pids="$dir/pids"

log() { echo "rgw.sh: $*" >&2; }

print_env() {
  local p
  p="$(sed -n 's/^rgw_port=//p' "$dir/info")"
  echo "S3_ENDPOINT=http://127.0.0.1:$p"
  echo "S3_REGION=$region"
  echo "S3_ACCESS_KEY_ID=$access_key"
  echo "S3_SECRET_ACCESS_KEY=$secret_key"
  if [ -n "$bucket" ]; then echo "S3_BUCKET=$bucket"; fi
}

alive() { # every recorded PID still running
  [ -s "$pids" ] || return 1
  local pid
  while read -r _ pid; do kill -0 "$pid" 2>/dev/null || return 1; done <"$pids"
}

answers() { # the gateway's HTTP port answers (an anonymous GET / is a 200 ListAllMyBuckets)
  local p
  p="$(sed -n 's/^rgw_port=//p' "$dir/info" 2>/dev/null)"
  [ -n "$p" ] && (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

stop() {
  if [ -s "$pids" ]; then
    local name pid
    # SIGKILL: memstore holds everything in RAM and the directory goes next, so there is
    # nothing to flush; a clean stop takes seconds (the OSD waits for the mon).
    while read -r name pid; do
      # Only a PID that still runs one of our daemons (PIDs get reused).
      if grep -qsF -- "$dir/ceph.conf" "/proc/$pid/cmdline"; then kill -9 "$pid" && log "stopped $name ($pid)"; fi
    done <"$pids"
    while read -r _ pid; do
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done <"$pids"
  fi
  # Only ever a directory this script made (it holds our marker), never an arbitrary path.
  if [ -f "$dir/.edge-upload-rgw" ]; then rm -rf "$dir"; fi
}

pid_of() { # a daemon's PID from its pid file (ceph daemons write it once they detach)
  local f="$dir/run/$1.pid"
  for _ in $(seq 100); do
    if [ -s "$f" ]; then cat "$f"; return 0; fi
    sleep 0.1
  done
  log "$1 wrote no pid file; its log: $dir/log/$1.log"
  tail -20 "$dir/log/$1.log" >&2 || true
  return 1
}

ceph_cli() { timeout 30 ceph -c "$conf" "$@"; }

up() {
  for bin in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
    command -v "$bin" >/dev/null || { log "$bin not found: apt-get install --no-install-recommends radosgw ceph-mon ceph-osd"; exit 3; }
  done
  if [ -f "$dir/info" ] && alive && answers; then
    log "already up in $dir"
    ensure_bucket
    print_env
    return 0
  fi
  [ -e "$dir" ] && { log "cleaning a stale $dir"; [ -f "$dir/.edge-upload-rgw" ] || { log "$dir exists and is not ours"; exit 4; }; stop; }
  local started=$SECONDS
  mkdir -p "$dir"/{run,log,mon,osd,rgw}
  touch "$dir/.edge-upload-rgw"
  : >"$pids"
  local fsid osd_uuid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_warn_on_pool_no_redundancy = false
# Start-up is mostly radosgw creating its pools, one map change each: propose them at once.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
osd_crush_chooseleaf_type = 0
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$name.log
mon_cluster_log_file = $dir/log/cluster.log
mon_data = $dir/mon/\$name
osd_data = $dir/osd/\$name
osd_objectstore = memstore
memstore_device_bytes = $((ram_mib * 1024 * 1024))
# A test store: no journaling of crashes, no core files.
crash_dir = $dir/run
[client]
# radosgw defaults to cephx and secure mode towards the mon; with auth off it would loop on
# "get_initial_auth_request returned -13" without this.
ms_mon_client_mode = crc
[client.rgw.edge]
# tcp_nodelay: else a small response body waits for the client's delayed ACK (Nagle),
# ~40 ms on every answer that has a body (ListParts, DeleteObjects, CopyObject...).
rgw_frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw_data = $dir/rgw
rgw_dns_name = 127.0.0.1
# Deleted objects' and aborted uploads' data is garbage-collected (2 h later by default):
# at once here, as the OSD holds it in RAM.
rgw_gc_obj_min_wait = 0
rgw_gc_processor_period = 30
rgw_enable_usage_log = false
rgw_enable_ops_log = false
EOF
  printf 'rgw_port=%s\nmon_port=%s\nram_mib=%s\n' "$port" "$mon_port" "$ram_mib" >"$dir/info"

  monmaptool --create --fsid "$fsid" --addv edge "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i edge --monmap "$dir/monmap" >/dev/null || { log "ceph-mon --mkfs failed"; exit 5; }
  ceph-mon -c "$conf" -i edge 2>>"$dir/log/start.log"
  echo "mon.edge $(pid_of mon.edge)" >>"$pids"

  local osd_id
  osd_id="$(ceph_cli osd new "$osd_uuid")"
  # memstore keeps only its fsid and superblock files on disk, in a directory mkfs does not create.
  mkdir -p "$dir/osd/osd.$osd_id"
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 || { log "ceph-osd --mkfs failed; its log: $dir/log/osd.$osd_id.log"; exit 5; }
  ceph-osd -c "$conf" -i "$osd_id" 2>>"$dir/log/start.log"
  echo "osd.$osd_id $(pid_of "osd.$osd_id")" >>"$pids"

  radosgw -c "$conf" -n client.rgw.edge 2>>"$dir/log/start.log"
  echo "client.rgw.edge $(pid_of client.rgw.edge)" >>"$pids"
  for _ in $(seq 600); do answers && break; sleep 0.1; done
  answers || { log "radosgw does not answer on 127.0.0.1:$port; its log: $dir/log/client.rgw.edge.log"; tail -20 "$dir/log/client.rgw.edge.log" >&2; exit 5; }

  radosgw-admin -c "$conf" user create --uid=edge-upload --display-name=edge-upload \
    --access-key="$access_key" --secret-key="$secret_key" >/dev/null 2>&1 ||
    radosgw-admin -c "$conf" user info --uid=edge-upload >/dev/null
  ensure_bucket
  log "up in $((SECONDS - started)) s: radosgw on 127.0.0.1:$port, mon on $mon_port, memstore $ram_mib MiB, state in $dir"
  print_env
}

ensure_bucket() {
  [ -n "$bucket" ] || return 0
  command -v curl >/dev/null || { log "curl not found: cannot create bucket $bucket (create it with any S3 client)"; return 0; }
  local p code
  p="$(sed -n 's/^rgw_port=//p' "$dir/info")"
  # 200 created, 409 BucketAlreadyOwnedByYou: both mean it is there.
  # RGW (as AWS) wants the payload hash header, which this curl does not add by itself.
  code="$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "x-amz-content-sha256: $(printf '' | sha256sum | cut -d' ' -f1)" --aws-sigv4 "aws:amz:$region:s3" --user "$access_key:$secret_key" "http://127.0.0.1:$p/$bucket")"
  case "$code" in 200|409) ;; *) log "creating bucket $bucket: HTTP $code"; exit 6 ;; esac
}

case "$cmd" in
  up) up ;;
  down) stop ;;
  status)
    if [ -f "$dir/info" ] && alive && answers; then echo "up"; cat "$pids"; else echo "down"; exit 1; fi ;;
  env) [ -f "$dir/info" ] || { log "not up in $dir"; exit 1; }; print_env ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
