#!/usr/bin/env bash
# A real one-node SLURM on this machine, for testing profiles/slurm (tests/test_slurm.py).
#
#   tests/slurm/local-cluster.sh up       install (Debian packages, if missing), configure, start, wait idle
#   tests/slurm/local-cluster.sh down     stop the daemons this script started
#   tests/slurm/local-cluster.sh status   sinfo + squeue, or "down"
#
# The node is this machine on 127.0.0.1 only (CommunicationParameters=NoInAddrAny), with the memory
# `slurmd -C` reports (a job asking for more stays PENDING forever) and OVERSUBSCRIBE x its CPUs.
# No systemd, no cgroups (proctrack/linuxproc, task/none), no accounting (so `sacct` fails: the
# slurm-local profile asks the executor plugin for squeue-based status, which it trusts only while
# MinJobAge >= 3x its initial wait).
# Two partitions on the one node, `cpu` (default) and `gpu`, as named in profiles/slurm. The node
# advertises GRES_GPUS fake GPUs (device files that alias /dev/null) so that the profile's `--gpus=1`
# is scheduled for real; the jobs themselves run on the CPU (the tiny config says device: cpu).
#
# Needs root (apt-get, daemons as root, /etc/slurm/slurm.conf). Refuses to touch a slurm.conf it did
# not write. Exit status: 0 up / down; 1 failure; 3 SLURM cannot be installed here (tests skip on 3).
set -euo pipefail

STATE=${GROKPATH_SLURM_STATE:-/var/lib/grokpath-slurm}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARK="# grokpath local test cluster (tests/slurm/local-cluster.sh)"
# Finished jobs stay visible to squeue/scontrol this long: >= 3x the slurm-local profile's initial
# status wait (2 s), and long enough for tests/test_slurm.py to inspect every job of a run.
MIN_JOB_AGE=${MIN_JOB_AGE:-3600}
# The node advertises OVERSUBSCRIBE x its real CPUs (and as many fake GPUs as it then fits 2-thread
# jobs): the test's jobs spend most of their time importing and waiting for the plugin's status
# polls, so letting independent jobs overlap shortens the run more than the shared cores slow it.
OVERSUBSCRIBE=${OVERSUBSCRIBE:-4}
GRES_GPUS=${GRES_GPUS:-4}
WAIT_S=${WAIT_S:-60}
PACKAGES=(slurmctld slurmd slurm-client munge)

log() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { log "$*"; exit "${2:-1}"; }

installed() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
        && command -v munged >/dev/null
}

install_packages() {
    installed && return 0
    command -v apt-get >/dev/null || die "no apt-get: cannot install ${PACKAGES[*]}" 3
    log "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # No recommends (no mail server, no docs). Update the package lists first when they do not know
    # slurmd, and once more if the install fails on lists gone stale.
    if ! apt-cache show slurmd >/dev/null 2>&1; then
        apt-get update -qq >"$STATE/apt.log" 2>&1 || die "apt-get update failed (see $STATE/apt.log)" 3
    fi
    if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>"$STATE/apt.log" 2>&1; then
        apt-get update -qq >>"$STATE/apt.log" 2>&1 || die "apt-get update failed (see $STATE/apt.log)" 3
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>"$STATE/apt.log" 2>&1 \
            || die "apt-get install failed (see $STATE/apt.log)" 3
    fi
    installed || die "packages installed but daemons missing" 3
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
    if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; not touching it"
    fi
    local host node
    host=$(hostname -s)
    # The node as slurmd sees this machine (CPUs, RealMemory in MB), CPUs oversubscribed (above);
    # config_overrides lets slurmd register with more CPUs than it counts.
    node=$(slurmd -C | grep '^NodeName=')
    [[ $node =~ CPUs=([0-9]+).*RealMemory=([0-9]+) ]] || die "slurmd -C did not report CPUs and RealMemory: $node"
    node="NodeName=$host CPUs=$((BASH_REMATCH[1] * OVERSUBSCRIBE)) RealMemory=${BASH_REMATCH[2]}"
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
    cat >"$CONF" <<EOF
$MARK
ClusterName=grokpath
SlurmctldHost=$host(127.0.0.1)
CommunicationParameters=NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
GresTypes=gpu
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=$MIN_JOB_AGE
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
$node NodeAddr=127.0.0.1 Gres=gpu:$GRES_GPUS State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
EOF
    # slurmd drops a GPU without a device file: fake ones are character devices aliasing /dev/null.
    mkdir -p "$STATE/fakegpu"
    local i
    for ((i = 0; i < GRES_GPUS; i++)); do
        [[ -c $STATE/fakegpu/gpu$i ]] || mknod "$STATE/fakegpu/gpu$i" c 1 3 2>/dev/null \
            || touch "$STATE/fakegpu/gpu$i"  # no mknod here: slurmd logs an error but counts it
    done
    cat >"$GRES_CONF" <<EOF
$MARK
NodeName=$host Name=gpu File=$STATE/fakegpu/gpu[0-$((GRES_GPUS - 1))]
EOF
    log "${node#NodeName=} Gres=gpu:$GRES_GPUS (fake); MinJobAge=${MIN_JOB_AGE}s"
}

start_munge() {
    if pid_alive /run/munge/munged.pid; then return 0; fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown -R munge:munge /run/munge /var/lib/munge /var/log/munge /etc/munge
    chmod 0700 /etc/munge /var/lib/munge /var/log/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$STATE/munged.ours"  # `down` stops only a munged that `up` started
}

wait_idle() {
    local host deadline state
    host=$(hostname -s)
    deadline=$((SECONDS + WAIT_S))
    while ((SECONDS < deadline)); do
        state=$(sinfo -h -n "$host" -p cpu -o %T 2>/dev/null || true)
        [[ $state == idle ]] && return 0
        [[ $state == inval || $state == drain* ]] && break
        sleep 0.5
    done
    log "node not idle (state: ${state:-none}): $(sinfo -h -R -o %E 2>/dev/null || true); last log lines:"
    tail -n 5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    return 1
}

up() {
    [[ $(id -u) -eq 0 ]] || die "not root: cannot install or start SLURM's daemons here" 3
    mkdir -p "$STATE"
    local t0=$SECONDS
    install_packages
    local t_install=$((SECONDS - t0))
    write_conf
    start_munge
    # -c: a fresh controller state each time (no drained node or stale job from an earlier run).
    pid_alive "$STATE/slurmctld.pid" || slurmctld -c
    pid_alive "$STATE/slurmd.pid" || slurmd
    wait_idle || die "SLURM did not come up"
    log "up in $((SECONDS - t0)) s (install ${t_install} s)"
}

stop_pidfile() {
    local pidfile=$1 name=$2 pid
    pid_alive "$pidfile" || return 0
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    log "$name ($pid) ignored SIGTERM; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
}

down() {
    if [[ -f $CONF ]] && grep -qF "$MARK" "$CONF" && pid_alive "$STATE/slurmctld.pid"; then
        scancel --quiet --user root 2>/dev/null || true  # jobs of this test cluster only
    fi
    stop_pidfile "$STATE/slurmd.pid" slurmd
    stop_pidfile "$STATE/slurmctld.pid" slurmctld
    if [[ -f $STATE/munged.ours ]]; then
        stop_pidfile /run/munge/munged.pid munged
        rm -f "$STATE/munged.ours"
    fi
    log "down"
}

status() {
    if pid_alive "$STATE/slurmctld.pid" && pid_alive "$STATE/slurmd.pid"; then
        sinfo
        squeue --states=all
    else
        echo down
        return 1
    fi
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    *) die "usage: $0 up|down|status" 2 ;;
esac
