# netns.sh -- separate "hosts" for the tests that cut a node off the
# network: one network namespace per agent, joined to this host by a veth
# pair. Addresses come only from the private test range 10.199.0.0/16,
# one /24 per namespace (10.199.S.1 host side, 10.199.S.2 inside), and
# traffic only flows between this host and the namespaces made here: no
# forwarding, no NAT, no sysctl. Everything is removed by the EXIT trap.
#
#   source tests/lib/farm.sh; source tests/lib/netns.sh
#   af_farm_init
#   af_netns_available || { echo "SKIP: ..."; exit 0; }
#   af_netns_create a                  # namespace + veth, AF_NETNS_ADDR[a]
#   af_netns_registry_start a          # registry on the host side of a's veth
#   af_netns_agent_start node-a a linux/arm64 [agent flags...]
#   af_netns_cut a / af_netns_restore a
#
# Needs root (ip netns). Namespace and link names carry the test's pid so
# concurrent tests never meet.

declare -A AF_NETNS_NS=() AF_NETNS_ADDR=() AF_NETNS_HOST=() AF_NETNS_VETH=()
AF_NETNS_COUNT=0

# af_netns_available: true when this process can create a namespace.
af_netns_available() {
    local probe="afprobe$$"
    command -v ip >/dev/null 2>&1 || return 1
    ip netns add "$probe" 2>/dev/null || return 1
    ip netns del "$probe" 2>/dev/null
    return 0
}

# af_netns_create KEY: a namespace with a veth to this host. Sets
# AF_NETNS_NS[KEY] (namespace), AF_NETNS_ADDR[KEY] (its address) and
# AF_NETNS_HOST[KEY] (this host's address on that link).
af_netns_create() {
    local key=$1 idx=$AF_NETNS_COUNT
    AF_NETNS_COUNT=$((idx + 1))
    # a /24 per namespace; the pid spreads concurrent tests apart
    local subnet=$(((($$ % 40) * 6 + idx) % 250 + 1))
    local ns="af$$n$idx" host="afh$$x$idx" peer="afp$$x$idx"
    ip netns add "$ns" || af_fail "ip netns add $ns failed"
    af_on_exit ip netns del "$ns"
    af_on_exit ip link del "$host"
    ip link add "$host" type veth peer name "$peer" || af_fail "ip link add $host failed"
    ip link set "$peer" netns "$ns"
    ip addr add "10.199.$subnet.1/24" dev "$host"
    ip link set "$host" up
    ip -n "$ns" addr add "10.199.$subnet.2/24" dev "$peer"
    ip -n "$ns" link set "$peer" up
    ip -n "$ns" link set lo up
    ip -n "$ns" route add default via "10.199.$subnet.1"
    AF_NETNS_NS[$key]=$ns
    AF_NETNS_ADDR[$key]=10.199.$subnet.2
    AF_NETNS_HOST[$key]=10.199.$subnet.1
    AF_NETNS_VETH[$key]=$peer
    af_log "namespace $ns: $(ip -n "$ns" -br addr show "$peer" | awk '{print $3}') <-> $host 10.199.$subnet.1"
}

# af_netns_registry_start KEY: docker-registry on this host's address of
# KEY's link (reachable from this host and, the host being the namespaces'
# gateway, from every namespace made here). Exports AF_REGISTRY.
af_netns_registry_start() {
    local addr=${AF_NETNS_HOST[$1]} dir="$AF_TMP/registry" port pid i
    mkdir -p "$dir/storage"
    port=$(python3 -c "import socket; s=socket.socket(); s.bind(('$addr',0)); print(s.getsockname()[1])")
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: $addr:$port
  secret: archfarm-test-only
EOF
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    pid=$!
    af_on_exit kill -TERM "$pid"
    AF_REGISTRY=$addr:$port
    export AF_REGISTRY
    for ((i = 0; i < 200; i++)); do
        curl -fsS -o /dev/null "http://$AF_REGISTRY/v2/" 2>/dev/null && {
            af_log "registry at $AF_REGISTRY"
            return 0
        }
        kill -0 "$pid" 2>/dev/null || af_fail "docker-registry exited: $(cat "$dir/registry.log")"
        sleep 0.05
    done
    af_fail "docker-registry on $AF_REGISTRY did not answer in 10 s"
}

# af_netns_agent_start NAME KEY PLATFORM [FLAGS...]: archfarm-agent NAME in
# namespace KEY on ADDR:7420, with AF_NODE=NAME, registered with farm.sh
# (stopped at exit, in the inventory).
af_netns_agent_start() {
    local name=$1 key=$2 platform=$3
    shift 3
    local dir="$AF_TMP/agents/$name" ep="tcp://${AF_NETNS_ADDR[$key]}:7420" pid deadline
    mkdir -p "$dir/work"
    AF_NODE=$name ip netns exec "${AF_NETNS_NS[$key]}" "$AF_BIN/archfarm-agent" --name "$name" \
        --listen "$ep" --platform "$platform" --workdir "$dir/work" --insecure "$@" \
        >"$dir/stdout.log" 2>"$dir/stderr.log" &
    pid=$!
    s_agent_register "$name"
    AF_AGENT_PID[$name]=$pid
    AF_AGENT_PORT[$name]=7420
    AF_AGENT_PLATFORM[$name]=$platform
    AF_AGENT_DIR[$name]=$dir
    deadline=$((SECONDS + 20))
    until grep -qs listening "$dir/stderr.log"; do
        kill -0 "$pid" 2>/dev/null || af_fail "agent $name exited: $(tail -n 20 "$dir/stderr.log")"
        ((SECONDS < deadline)) || af_fail "agent $name did not listen within 20 s"
        sleep 0.05
    done
    AF_INV_HOSTS+=("$name|$ep|$platform")
    af_log "agent $name ($platform) pid $pid in ${AF_NETNS_NS[$key]} on $ep"
}

# af_netns_cut KEY: the namespace's end of the link goes down (the node is
# cut off; its processes keep running).
af_netns_cut() {
    ip -n "${AF_NETNS_NS[$1]}" link set "${AF_NETNS_VETH[$1]}" down
}

# af_netns_restore KEY: the link comes back (address and route re-added:
# the kernel drops the default route with the link).
af_netns_restore() {
    local ns=${AF_NETNS_NS[$1]}
    ip -n "$ns" link set "${AF_NETNS_VETH[$1]}" up
    ip -n "$ns" route replace default via "${AF_NETNS_HOST[$1]}" 2>/dev/null || true
}
