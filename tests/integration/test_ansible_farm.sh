#!/usr/bin/env bash
# test_ansible_farm -- the role run for real (connection local, each host
# into its own prefix under a temp dir):
#
#   1. the shipped config/inventory.yaml deploys AS WRITTEN: every host ends
#      with an agent.yaml whose listen port is the port `archfarm inventory
#      list` dials, and every CURVE host with its own 0600 secret key whose
#      public half is in the known-agents store; a second run changes nothing;
#   2. revoking a coordinator key through the role (delete it on the
#      controller, rerun): that coordinator is `unauthorized` on a real
#      agent while another stays authorised, without a restart;
#   3. an agent that cannot start (a bad certificate) fails the play on that
#      host, and the other host of the batch still deploys;
#   4. systemd-analyze security --offline=yes rates the rendered unit <= 2.5;
#   5. ansible-lint --profile production reports 0 violations (offline).
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
command -v ansible-playbook >/dev/null || af_fail "ansible-playbook not installed (apt-get install ansible-core)"
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCAL_TEMP="$AF_TMP/ansible-local" \
    ANSIBLE_REMOTE_TEMP="$AF_TMP/ansible-remote" ANSIBLE_STDOUT_CALLBACK=default \
    ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_FORKS=4 ANSIBLE_PIPELINING=1
PLAY="$AF_SOURCE_DIR/deploy/ansible/site.yml"
EXAMPLE="$AF_SOURCE_DIR/config/inventory.yaml"
T=$AF_TMP

# coordinator keys on the controller: two public keys
mkdir -p "$T/coordkeys" "$T/keys"
"$AF_BIN/archfarm" keygen "$T/keys/c1" >/dev/null 2>&1 || af_fail "archfarm keygen c1 failed"
"$AF_BIN/archfarm" keygen "$T/keys/c2" >/dev/null 2>&1 || af_fail "archfarm keygen c2 failed"
c1=$(ls "$T/keys/c1"/*.key) c2=$(ls "$T/keys/c2"/*.key)
c1_secret="${c1}_secret" c2_secret="${c2}_secret"
cp "$c1" "$T/coordkeys/c1.key"
cp "$c2" "$T/coordkeys/c2.key"

# s_play INVENTORY LOG [EXTRA -e ...]: the playbook as an ops dry run would
# run it into prefixes; returns ansible-playbook's status. One batch
# (archfarm_serial=100%, $S_SERIAL) keeps the 9-host runs short; the
# bad-certificate case runs with the default batch of 2.
s_play() {
    local inv=$1 log=$2
    shift 2
    ansible-playbook -i "$inv" "$PLAY" \
        -e ansible_connection=local -e ansible_python_interpreter=/usr/bin/python3 \
        -e "archfarm_root=$T/hosts/{{ inventory_hostname }}" \
        -e "archfarm_become=false archfarm_create_user=false archfarm_manage_service=false" \
        -e "archfarm_install_packages=false archfarm_user=$(id -un) archfarm_group=$(id -gn)" \
        -e "archfarm_install_method=binary archfarm_agent_binary=$AF_BIN/archfarm-agent archfarm_cli=$AF_BIN/archfarm" \
        -e "archfarm_known_agents_dir=$T/known archfarm_authorized_keys_dir=$T/coordkeys" \
        -e "archfarm_serial=${S_SERIAL:-100%}" \
        "$@" >"$log" 2>&1
}

# --- 1. the shipped inventory, as written -------------------------------------------
[[ $(id -u) == 0 ]] || af_fail "this test installs files owned by root: run it as root"
s_play "$EXAMPLE" "$T/play1.log" || af_fail "site.yml on config/inventory.yaml failed:
$(tail -n 60 "$T/play1.log")"
"$AF_BIN/archfarm" inventory list --format json "$EXAMPLE" >"$T/nodes.json" 2>/dev/null
n=0
while IFS=$'\t' read -r name endpoint insecure; do
    conf="$T/hosts/$name/etc/archfarm/agent.yaml"
    [[ -s $conf ]] || af_fail "$name: no rendered agent.yaml"
    listen=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["listen"])' "$conf")
    af_assert_eq "${endpoint##*:}" "${listen##*:}" "$name: agent listens on the port the coordinator dials ($endpoint)"
    if [[ $insecure == false ]]; then
        sec="$T/hosts/$name/etc/archfarm/agent.key_secret"
        af_assert_eq 600 "$(stat -c %a "$sec")" "$name: secret key is 0600"
        af_assert_eq "$(id -un)" "$(stat -c %U "$sec")" "$name: secret key owned by the service user"
        [[ -s "$T/known/$name.key" ]] || af_fail "$name: public key not collected in the known-agents store"
        cmp -s "$T/known/$name.key" "$T/hosts/$name/etc/archfarm/agent.key" ||
            af_fail "$name: the known-agents store differs from the host's key"
        grep -q 'secret-key' "$T/known/$name.key" && af_fail "$name: a secret key reached the controller"
        af_assert_eq "c1.key c2.key" "$(ls "$T/hosts/$name/etc/archfarm/authorized_keys" | paste -sd' ')" \
            "$name: exactly the controller's coordinator keys"
    fi
    n=$((n + 1))
done < <(jq -r '.[] | [.name, .endpoint, (.insecure | tostring)] | @tsv' "$T/nodes.json")
af_assert_eq 9 "$n" "every host of the example inventory was checked"
s_play "$EXAMPLE" "$T/play2.log" || af_fail "second run failed: $(tail -n 40 "$T/play2.log")"
changed=$(grep -E '^[^ ]+ +: ok=' "$T/play2.log" | grep -vc 'changed=0 ' || true)
af_assert_eq 0 "$changed" "second run on the example inventory reports changed=0 on every host"
af_log "example inventory: 9 hosts deployed, second run changed=0"

# --- 2. revoking a coordinator key ----------------------------------------------------
port=$(af_free_port)
cat >"$T/one.yaml" <<YAML
all:
  children:
    archfarm_agents:
      hosts:
        solo: {archfarm_platforms: [linux/amd64], ansible_host: 127.0.0.1, archfarm_port: $port}
YAML
s_play "$T/one.yaml" "$T/solo1.log" || af_fail "site.yml for solo failed: $(tail -n 40 "$T/solo1.log")"
R="$T/hosts/solo"
# the installed agent from its rendered config (paths moved into the prefix);
# readiness is awaited on the sd_notify socket the unit would use
python3 - "$T/notify" >"$T/ready.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[1] + ".bound", "w").close()
print(s.recv(4096).decode())
PY
notify_pid=$!
af_wait_until 20 "the notify listener" test -e "$T/notify.bound"
mkdir -p "$T/solo-work"
NOTIFY_SOCKET="$T/notify" "$R/usr/local/bin/archfarm-agent" --config "$R/etc/archfarm/agent.yaml" \
    --cert "$R/etc/archfarm/agent.key" --authorized-keys "$R/etc/archfarm/authorized_keys" \
    --workdir "$T/solo-work" >"$T/solo-agent.log" 2>&1 &
agent_pid=$!
af_on_exit kill "$agent_pid"
wait "$notify_pid" || af_fail "no READY from the agent: $(cat "$T/solo-agent.log")"
af_assert_contains "$(cat "$T/ready.txt")" "READY=1" "the agent sends READY=1 once listening"
af_assert_match "$(cat "$T/ready.txt")" "STATUS=listening on tcp://[^ ]*:$port" "the agent's STATUS names its endpoint"
# the coordinator finds the agent's key in known_agents/ beside its inventory
mkdir -p "$T/coord"
cp "$T/one.yaml" "$T/coord/farm.yaml"
ln -s "$T/known" "$T/coord/known_agents"
s_ls() { env ARCHFARM_CLIENT_CERT="$1" "$AF_BIN/archfarm" -i "$T/coord/farm.yaml" ls --timeout 5000 2>&1 || true; }
af_assert_match "$(s_ls "$c1_secret")" '^solo .*ready' "c1 is authorised"
af_assert_match "$(s_ls "$c2_secret")" '^solo .*ready' "c2 is authorised"

rm "$T/coordkeys/c2.key"
s_play "$T/one.yaml" "$T/solo2.log" || af_fail "site.yml (revoking c2) failed: $(tail -n 40 "$T/solo2.log")"
[[ -e "$R/etc/archfarm/authorized_keys/c2.key" ]] && af_fail "the role left the revoked key c2 on the host"
# the agent rescans its keys every AF_CURVE_RESCAN_MS (1 s); the bound is
# that plus ls's own deadline and slack
s_c2_refused() { [[ $(s_ls "$c2_secret") =~ (^|$'\n')solo\ .*unauthorized ]]; }
af_wait_until 30 "c2 to be refused after revocation" s_c2_refused
af_assert_match "$(s_ls "$c1_secret")" '^solo .*ready' "c1 stays authorised after c2 is revoked"
kill -0 "$agent_pid" 2>/dev/null || af_fail "the agent stopped: a key change must not restart it"
af_assert_contains "$(cat "$T/solo-agent.log")" "(reloaded)" "the agent reloaded its keys live"

# the agent warns about a readable secret key at a reload of its keys, not
# only at start (it started with 0600: no warning then)
grep -q 'readable by others' "$T/solo-agent.log" && af_fail "warning about a 0600 secret key"
chmod 640 "$R/etc/archfarm/agent.key_secret"
cp "$c2" "$R/etc/archfarm/authorized_keys/c2.key"
s_warned() { grep -q 'agent.key_secret holds a secret key and is readable by others' "$T/solo-agent.log"; }
af_wait_until 30 "the readable-secret warning at the keys reload" s_warned
rm "$R/etc/archfarm/authorized_keys/c2.key"
chmod 600 "$R/etc/archfarm/agent.key_secret"

# a secret key among the coordinator keys is refused, and nothing is copied
cp "$c1_secret" "$T/coordkeys/"
s_play "$T/one.yaml" "$T/solo3.log" && af_fail "the role accepted a *_secret file among the coordinator keys"
af_assert_contains "$(cat "$T/solo3.log")" "holds secret keys" "the refusal says why"
[[ -n $(ls "$R/etc/archfarm/authorized_keys" | grep _secret || true) ]] && af_fail "a secret key reached the host"
rm "$T/coordkeys/$(basename "$c1_secret")"

# a pinned archfarm_server_key that is not the host's key fails, naming both
s_play "$T/one.yaml" "$T/solo4.log" -e 'archfarm_server_key=hc@Ar&y&}XVyE349qxxCK%$@WIj01mKmF8Lpu&lS' &&
    af_fail "the role accepted an archfarm_server_key that is not the host's key"
af_assert_contains "$(cat "$T/solo4.log")" "hc@Ar&y&}XVyE349qxxCK%\$@WIj01mKmF8Lpu&lS" "the mismatch names the inventory's key"
af_assert_contains "$(cat "$T/solo4.log")" "$(python3 -c 'import sys,re; print(re.search(r"public-key = \"(.{40})\"", open(sys.argv[1]).read()).group(1))' "$R/etc/archfarm/agent.key")" \
    "the mismatch names the host's key"

# --- 3. an agent that cannot start fails the play on that host ------------------------
mkdir -p "$T/bad"
printf 'not a certificate\n' >"$T/bad/agent.key"
printf 'not a certificate\n' >"$T/bad/agent.key_secret"
cat >"$T/two.yaml" <<YAML
all:
  children:
    archfarm_agents:
      vars: {archfarm_platforms: [linux/amd64], ansible_host: 127.0.0.1}
      hosts:
        good: {archfarm_port: $(af_free_port)}
        badcert: {archfarm_port: $(af_free_port), archfarm_agent_cert: "$T/bad/agent.key_secret"}
YAML
rc=0
S_SERIAL=2 s_play "$T/two.yaml" "$T/two.log" || rc=$?
af_assert_ne 0 "$rc" "the play fails when an agent cannot start"
af_assert_match "$(cat "$T/two.log")" 'badcert +: ok=[0-9]+ +changed=[0-9]+ +unreachable=0 +failed=1' "badcert failed"
af_assert_match "$(cat "$T/two.log")" 'good +: ok=[0-9]+ +changed=[0-9]+ +unreachable=0 +failed=0' "good deployed"
af_assert_contains "$(cat "$T/two.log")" "cannot load a CURVE certificate" "the failure says the certificate is bad"
[[ -s "$T/hosts/good/etc/archfarm/agent.yaml" ]] || af_fail "the good host of the batch was not deployed"
[[ -e "$T/hosts/badcert/etc/archfarm/agent.yaml" ]] && af_fail "agent.yaml was written for the host whose agent cannot start"

# --- 4. the unit's exposure -----------------------------------------------------------
# rendered for the test's user (root); rated as deployed, for the service user
sed -e 's/^User=.*/User=archfarm/' -e 's/^Group=.*/Group=archfarm/' \
    "$R/etc/systemd/system/archfarm-agent.service" >"$T/archfarm-agent.service"
grep -q '^Type=notify' "$T/archfarm-agent.service" || af_fail "the unit is not Type=notify"
systemd-analyze security --offline=yes "$T/archfarm-agent.service" >"$T/security.log" 2>&1 || true
score=$(sed -nE 's/.*Overall exposure level for archfarm-agent.service: ([0-9.]+).*/\1/p' "$T/security.log")
[[ -n $score ]] || af_fail "systemd-analyze security gave no score: $(tail -n 20 "$T/security.log")"
awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' ||
    af_fail "unit exposure $score > 2.5: $(grep -E '^✗' "$T/security.log" | head -n 30)"
af_log "systemd-analyze security: $score"

# --- 5. ansible-lint ------------------------------------------------------------------
if command -v ansible-lint >/dev/null; then
    (cd "$AF_SOURCE_DIR/deploy/ansible" && ansible-lint --offline --nocolor --profile production) \
        >"$T/lint.log" 2>&1 || af_fail "ansible-lint --profile production: $(tail -n 30 "$T/lint.log")"
    af_assert_contains "$(cat "$T/lint.log")" "0 failure(s), 0 warning(s)" "ansible-lint: 0 violations"
else
    af_fail "ansible-lint is not installed (apt-get install ansible-lint)"
fi
echo "PASS: test_ansible_farm"
