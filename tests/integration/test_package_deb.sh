#!/usr/bin/env bash
# test_package_deb -- the archfarm-agent .deb, installed the Debian way.
#
# A throwaway Debian 12 root (debootstrap --variant=minbase, with the agent's
# runtime libraries; made once per machine and kept as a tarball under
# build-cross/, about 70 s the first time) gets `dpkg -i` of the amd64
# archfarm-agent package that cpack makes from this build:
#   - dpkg resolves its Depends (computed by dpkg-shlibdeps) inside the root;
#   - postinst created the archfarm system user, /var/lib/archfarm (0750),
#     this host's CURVE key pair (secret 0600, owned by archfarm) and the
#     coordinators/ directory; the unit is installed and enabled, not started;
#     /etc/archfarm/agent.yaml is a conffile;
#   - the installed agent starts as the unit would (its ExecStart, as its
#     User) from the packaged config, and a coordinator whose key is in
#     /etc/archfarm/coordinators sees it `ready` over CURVE;
#   - purge removes the user, the state, the keys and the enablement.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
[[ $(id -u) == 0 ]] || af_fail "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || af_fail "debootstrap not installed (tests/lib/deps.sh lists it)"

# --- the throwaway root ------------------------------------------------------
cache="$AF_SOURCE_DIR/build-cross/debootstrap-bookworm.tar"
INCLUDE=libzmq5,libczmq4,libmsgpackc2,libcurl4,libssl3,libyaml-0-2,libjansson4,libarchive13,zlib1g,init-system-helpers,libasan8,libubsan1
if [[ ! -f $cache || $(cat "$cache.include" 2>/dev/null) != "$INCLUDE" ]]; then
    af_log "debootstrap --variant=minbase bookworm (cached in $cache afterwards)"
    mkdir -p "$AF_TMP/boot" "$(dirname "$cache")"
    debootstrap --variant=minbase --include="$INCLUDE" bookworm "$AF_TMP/boot" \
        http://deb.debian.org/debian >"$AF_TMP/debootstrap.log" 2>&1 ||
        af_fail "debootstrap failed: $(tail -n 20 "$AF_TMP/debootstrap.log")"
    tar -C "$AF_TMP/boot" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
    echo "$INCLUDE" >"$cache.include"
    rm -rf "$AF_TMP/boot"
fi
ROOT="$AF_TMP/root"
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$cache"
af_log "throwaway root at $ROOT"

# --- the package of this build -------------------------------------------------
(cd "$AF_BIN/.." && cpack -G DEB -B "$AF_TMP/cpack" >"$AF_TMP/cpack.log" 2>&1) ||
    af_fail "cpack failed: $(tail -n 30 "$AF_TMP/cpack.log")"
deb=$(ls "$AF_TMP"/cpack/archfarm-agent_*_amd64.deb)
af_assert_contains "$(dpkg-deb -f "$deb" Depends)" "libzmq5" "Depends names libzmq5"
af_assert_eq amd64 "$(dpkg-deb -f "$deb" Architecture)" "Architecture"
listing=$(dpkg-deb -c "$deb")
af_assert_contains "$listing" "./usr/bin/archfarm-agent" "the package holds the agent"
af_assert_contains "$listing" "./lib/systemd/system/archfarm-agent.service" "the package holds the unit"
cp "$deb" "$ROOT/tmp/archfarm-agent.deb"

# in_root CMD...: CMD in the root, with /proc mounted as on a real host
# (a private mount namespace, gone when CMD ends)
mkdir -p "$ROOT/proc"
in_root() { unshare -m sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$ROOT" "$@"; }
in_root dpkg -i /tmp/archfarm-agent.deb >"$AF_TMP/dpkg-i.log" 2>&1 ||
    af_fail "dpkg -i failed: $(cat "$AF_TMP/dpkg-i.log")"
cat "$AF_TMP/dpkg-i.log" >&2

# --- what postinst made -------------------------------------------------------------
pw=$(in_root getent passwd archfarm) || af_fail "no archfarm user after install"
af_assert_match "$pw" '^archfarm:x:[0-9]+:[0-9]+:.*:/var/lib/archfarm:/usr/sbin/nologin$' "archfarm system user"
uid=$(cut -d: -f3 <<<"$pw")
((uid < 1000)) || af_fail "archfarm user uid $uid is not a system uid"
af_assert_eq "archfarm archfarm 750" "$(in_root stat -c '%U %G %a' /var/lib/archfarm)" "state directory"
af_assert_eq "archfarm 600" "$(in_root stat -c '%U %a' /etc/archfarm/agent.key_secret)" "secret key 0600, owned by archfarm"
[[ -f $ROOT/lib/systemd/system/archfarm-agent.service ]] || af_fail "unit not installed"
[[ -L $ROOT/etc/systemd/system/multi-user.target.wants/archfarm-agent.service ]] ||
    af_fail "unit not enabled (no multi-user.target.wants link)"
af_assert_contains "$(in_root dpkg-query --showformat='${Conffiles}' --show archfarm-agent)" \
    "/etc/archfarm/agent.yaml" "agent.yaml is a conffile"
af_assert_eq "ok" "$(in_root dpkg-query --showformat='${db:Status-Abbrev}' --show archfarm-agent | tr -d ' ' | sed 's/^ii$/ok/')" \
    "dpkg says installed"

# --- it starts from the packaged config, as the unit runs it ------------------------
unit="$ROOT/lib/systemd/system/archfarm-agent.service"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
af_assert_eq "/usr/bin/archfarm-agent --config /etc/archfarm/agent.yaml" "$exec_start" "the unit's ExecStart"
port=$(grep -oE 'tcp://\*:[0-9]+' "$ROOT/etc/archfarm/agent.yaml" | sed 's/.*://')
af_assert_eq 7420 "$port" "the packaged config listens on 7420"
# Run it on a free port instead (the only edit to the packaged config): 7420
# may be taken on a shared machine, e.g. by another suite's run of this test.
port=$(af_free_port)
sed -i "s|tcp://\*:7420|tcp://*:$port|" "$ROOT/etc/archfarm/agent.yaml"
grep -q "tcp://\*:$port" "$ROOT/etc/archfarm/agent.yaml" || af_fail "could not move the packaged config to port $port"
"$AF_BIN/archfarm" keygen --name coord "$AF_TMP/coord" >/dev/null 2>&1
cp "$AF_TMP/coord/coord.key" "$ROOT/etc/archfarm/coordinators/coord.key"
server_key=$(in_root /usr/bin/archfarm-agent --config /etc/archfarm/agent.yaml --init-cert 2>/dev/null)
af_assert_eq 40 "${#server_key}" "--init-cert prints the existing public key"
# shellcheck disable=SC2086 # the unit's ExecStart, split as systemd would
unshare -m sh -c 'mount -t proc proc "$1/proc" && exec chroot --userspec="$2:$2" "$1" $3' \
    sh "$ROOT" "$user" "$exec_start" >"$AF_TMP/agent.out" 2>"$AF_TMP/agent.err" &
agent=$!
af_on_exit kill -TERM "$agent"
s_started() {
    grep -q listening "$AF_TMP/agent.err" && return 0
    kill -0 "$agent" 2>/dev/null || af_fail "the packaged agent exited: $(cat "$AF_TMP/agent.err")"
    return 1
}
af_wait_until 20 "the packaged agent to listen" s_started
cat >"$AF_TMP/inv.yaml" <<EOF
all:
  children:
    archfarm_agents:
      hosts:
        packaged:
          ansible_host: 127.0.0.1
          archfarm_port: $port
          archfarm_platforms: [linux/amd64]
          archfarm_server_key: "$server_key"
EOF
rc=0
ARCHFARM_CLIENT_CERT="$AF_TMP/coord/coord.key" timeout 30 "$AF_BIN/archfarm" -i "$AF_TMP/inv.yaml" ls \
    >"$AF_TMP/ls.out" 2>&1 || rc=$?
cat "$AF_TMP/ls.out" >&2
af_assert_eq 0 "$rc" "archfarm ls exit status"
af_assert_match "$(cat "$AF_TMP/ls.out")" "^packaged +tcp://127\\.0\\.0\\.1:$port +ready " \
    "the packaged agent answers over CURVE"
kill -TERM "$agent"
wait "$agent" || af_fail "the packaged agent did not exit 0 on SIGTERM: $(tail -n 5 "$AF_TMP/agent.err")"

# --- purge removes what install made --------------------------------------------------
in_root dpkg --purge archfarm-agent >"$AF_TMP/purge.log" 2>&1 || af_fail "purge failed: $(cat "$AF_TMP/purge.log")"
if in_root getent passwd archfarm >/dev/null; then af_fail "purge left the archfarm user"; fi
for p in /var/lib/archfarm /etc/archfarm /etc/systemd/system/multi-user.target.wants/archfarm-agent.service \
    /usr/bin/archfarm-agent /lib/systemd/system/archfarm-agent.service; do
    [[ -e $ROOT$p || -L $ROOT$p ]] && af_fail "purge left $p"
done
printf 'ok: purge removed the user, state, keys, unit and enablement\n' >&2
echo "PASS: test_package_deb"
