#!/usr/bin/env bash
# test_ansible -- one inventory feeds Ansible and archfarm, and the playbook
# really installs a working agent.
#
#   - ansible-playbook --syntax-check deploy/ansible/site.yml;
#   - ansible-inventory --list accepts config/inventory.yaml, and so does
#     `archfarm inventory check`; both see the same archfarm_agents hosts;
#   - a real run of site.yml against localhost (connection local) into a
#     temp prefix (archfarm_root), with no user creation and no service
#     start (this host may have no systemd), installs the binary, agent.yaml
#     and the unit; a second run changes nothing;
#   - the installed binary starts from the rendered agent.yaml (flags only
#     move it to a free port and a temp workdir) and serves `archfarm ls`.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
command -v ansible-playbook >/dev/null || af_fail "ansible-playbook not installed (apt-get install ansible-core)"
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCAL_TEMP="$AF_TMP/ansible-local" \
    ANSIBLE_REMOTE_TEMP="$AF_TMP/ansible-remote" ANSIBLE_STDOUT_CALLBACK=default
PLAY="$AF_SOURCE_DIR/deploy/ansible/site.yml"
EXAMPLE="$AF_SOURCE_DIR/config/inventory.yaml"

# --- syntax and the example inventory ------------------------------------------------
ansible-playbook --syntax-check -i localhost, "$PLAY" >"$AF_TMP/syntax.log" 2>&1 ||
    af_fail "ansible-playbook --syntax-check failed: $(cat "$AF_TMP/syntax.log")"
printf 'ok: site.yml passes --syntax-check\n' >&2

[[ -f $EXAMPLE ]] || af_fail "config/inventory.yaml (the example farm) is missing"
ansible-inventory -i "$EXAMPLE" --list >"$AF_TMP/example.json" 2>"$AF_TMP/example.err" ||
    af_fail "ansible-inventory rejects config/inventory.yaml: $(cat "$AF_TMP/example.err")"
grep -q '\[WARNING\]: .*\(Unable to parse\|Failed to parse\)' "$AF_TMP/example.err" &&
    af_fail "ansible-inventory could not parse config/inventory.yaml: $(cat "$AF_TMP/example.err")"
ansible_hosts=$(jq -r '[.. | objects | select(has("hosts")) | .hosts[]] | unique | .[]' "$AF_TMP/example.json" |
    sort | paste -sd, -)
ansible_agents=$(ansible-inventory -i "$EXAMPLE" --graph archfarm_agents 2>/dev/null |
    sed -nE 's/^[ |]*--([^@].*)$/\1/p' | sort -u | paste -sd, -)
[[ -n $ansible_agents ]] || af_fail "ansible-inventory sees no host in archfarm_agents of config/inventory.yaml"
"$AF_BIN/archfarm" inventory check "$EXAMPLE" >"$AF_TMP/check.log" 2>&1 ||
    af_fail "archfarm inventory check rejects config/inventory.yaml: $(cat "$AF_TMP/check.log")"
archfarm_agents=$("$AF_BIN/archfarm" inventory list --format json "$EXAMPLE" | jq -r '.[].name' | sort -u | paste -sd, -)
af_assert_eq "$ansible_agents" "$archfarm_agents" "Ansible and archfarm see the same archfarm_agents hosts"
af_log "example inventory: all hosts $ansible_hosts"

# --- a real run into a temp prefix ---------------------------------------------------
ROOTFS="$AF_TMP/root"
mkdir -p "$ROOTFS"
cat >"$AF_TMP/inventory.yaml" <<EOF
all:
  children:
    archfarm_agents:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: /usr/bin/python3
          archfarm_platforms: [linux/amd64]
          archfarm_insecure: true
          archfarm_max_jobs: 2
          archfarm_port: 7431
          archfarm_install_method: binary
EOF
"$AF_BIN/archfarm" inventory check "$AF_TMP/inventory.yaml" >/dev/null 2>&1 ||
    af_fail "archfarm inventory check rejects the test inventory"

s_play() {
    ansible-playbook -i "$AF_TMP/inventory.yaml" "$PLAY" \
        -e "archfarm_root=$ROOTFS archfarm_become=false archfarm_create_user=false" \
        -e "archfarm_user=$(id -un) archfarm_group=$(id -gn) archfarm_manage_service=false" \
        -e "archfarm_agent_binary=$AF_BIN/archfarm-agent" \
        -e "archfarm_install_packages=$([[ $(id -u) == 0 ]] && echo true || echo false)"
}
s_play >"$AF_TMP/play1.log" 2>&1 || af_fail "ansible-playbook site.yml failed:
$(tail -n 40 "$AF_TMP/play1.log")"
printf 'ok: site.yml ran against localhost\n' >&2
for f in usr/local/bin/archfarm-agent etc/archfarm/agent.yaml etc/systemd/system/archfarm-agent.service; do
    [[ -s "$ROOTFS/$f" ]] || af_fail "the playbook did not install /$f"
done
[[ -x "$ROOTFS/usr/local/bin/archfarm-agent" ]] || af_fail "installed agent is not executable"
cmp -s "$AF_BIN/archfarm-agent" "$ROOTFS/usr/local/bin/archfarm-agent" || af_fail "installed agent differs from the build"
af_assert_eq 700 "$(stat -c %a "$ROOTFS/var/lib/archfarm-agent")" "workdir is private (0700)"
unit=$(cat "$ROOTFS/etc/systemd/system/archfarm-agent.service")
af_assert_contains "$unit" "ExecStart=/usr/local/bin/archfarm-agent --config /etc/archfarm/agent.yaml" "unit ExecStart"
af_assert_contains "$unit" "WantedBy=multi-user.target" "unit is installable"
if command -v systemd-analyze >/dev/null 2>&1; then
    # the unit names paths of the real system; verify the syntax only
    sed "s#^ExecStart=.*#ExecStart=/bin/true#; s#^User=.*#User=root#; s#^Group=.*#Group=root#" \
        "$ROOTFS/etc/systemd/system/archfarm-agent.service" >"$AF_TMP/archfarm-agent.service"
    if ! systemd-analyze verify "$AF_TMP/archfarm-agent.service" >"$AF_TMP/verify.log" 2>&1; then
        grep -q 'archfarm-agent.service' "$AF_TMP/verify.log" && af_fail "systemd-analyze: $(cat "$AF_TMP/verify.log")"
    fi
fi
conf="$ROOTFS/etc/archfarm/agent.yaml"
af_assert_eq "tcp://*:7431" "$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["listen"])' "$conf")" \
    "agent.yaml listen from archfarm_port"
af_assert_eq 2 "$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["max_jobs"])' "$conf")" \
    "agent.yaml max_jobs from archfarm_max_jobs"

s_play >"$AF_TMP/play2.log" 2>&1 || af_fail "second ansible-playbook run failed: $(tail -n 40 "$AF_TMP/play2.log")"
af_assert_match "$(cat "$AF_TMP/play2.log")" 'localhost +: ok=[0-9]+ +changed=0 ' "second run changes nothing"

# --- the installed agent runs from its rendered config -------------------------------
AF_BIN_SAVED=$AF_BIN
AF_BIN="$ROOTFS/usr/local/bin"
ln -s "$AF_BIN_SAVED/archfarm" "$AF_BIN/archfarm"
af_agent_start localhost-agent linux/amd64 --config "$conf"
AF_BIN=$AF_BIN_SAVED
af_inventory_write "$AF_TMP/farm.yaml"
af_archfarm ls >"$AF_TMP/ls.log" 2>&1 || true
af_assert_match "$(grep -w localhost-agent "$AF_TMP/ls.log" || true)" 'ready' "the installed agent serves archfarm ls"

echo "PASS: test_ansible"
