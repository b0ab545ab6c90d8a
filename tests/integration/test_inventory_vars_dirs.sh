#!/usr/bin/env bash
# test_inventory_vars_dirs -- archfarm reads group_vars/ and host_vars/ the
# way Ansible does (issue 10).
#
# An inventory whose variables are set, and overridden, at every level
# Ansible knows: the inventory file's all/group/host vars, group_vars/all.yml,
# a group_vars/ directory of files (.yaml, no extension; a .txt and a hidden
# file that Ansible ignores), a group_vars/ subdirectory, a host_vars/
# directory and a host_vars/NAME.yaml file. For every host, what
# `ansible-inventory --host` (Ansible itself) resolves for archfarm_port,
# archfarm_max_jobs, archfarm_priority, archfarm_insecure, archfarm_labels
# and archfarm_platforms must equal what `archfarm inventory list --format
# json` reports. Then values that YAML 1.1 (Ansible) and 1.2 read
# differently, and a misspelled variable, in a vars file: refused with that
# file's FILE:LINE:COL. And an inventory given as a pipe reads no vars dirs.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
command -v ansible-inventory >/dev/null || af_fail "ansible-inventory is missing (tests/lib/deps.sh installs ansible-core)"
I=$AF_TMP/inv
mkdir -p "$I/group_vars/archfarm_agents" "$I/group_vars/arm" "$I/host_vars/pi02"
cat >"$I/inventory.yaml" <<'EOF'
all:
  vars:
    archfarm_port: 7001
    archfarm_insecure: true
  children:
    archfarm_agents:
      vars:
        archfarm_max_jobs: 2
      children:
        arm:
          vars:
            archfarm_priority: 5
          hosts:
            pi01:
              ansible_host: 127.0.0.1
              archfarm_platforms: [linux/arm64]
            pi02:
              ansible_host: 127.0.0.2
              archfarm_platforms: [linux/arm64]
              archfarm_max_jobs: 3
        x86:
          hosts:
            box:
              ansible_host: 127.0.0.3
              archfarm_platforms: linux/amd64
EOF
printf 'archfarm_port: 7500\n' >"$I/group_vars/all.yml"
printf 'archfarm_max_jobs: 4\narchfarm_labels: {tier: base, zone: a}\n' \
    >"$I/group_vars/archfarm_agents/10-base.yaml"
printf 'archfarm_labels: {tier: override}\n' >"$I/group_vars/archfarm_agents/20-override"
printf 'archfarm_max_jobs: 50\n' >"$I/group_vars/archfarm_agents/30-ignored.txt"
printf 'archfarm_max_jobs: 99\n' >"$I/group_vars/archfarm_agents/.hidden.yml"
printf 'archfarm_priority: 7\narchfarm_port: 7600\n' >"$I/group_vars/arm/main.yml"
printf 'archfarm_max_jobs: 8\narchfarm_insecure: false\narchfarm_server_key: "%s"\n' \
    'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7' >"$I/host_vars/pi02/a.yml"
printf 'archfarm_port: 7700\narchfarm_platforms: [linux/amd64, linux/386]\n' >"$I/host_vars/box.yaml"

af_archfarm_inv() { "$AF_BIN/archfarm" -i "$1" inventory list --format json; }
af_archfarm_inv "$I/inventory.yaml" >"$AF_TMP/archfarm.json" 2>"$AF_TMP/archfarm.err" ||
    af_fail "archfarm inventory list: $(cat "$AF_TMP/archfarm.err")"
for h in pi01 pi02 box; do
    ansible-inventory -i "$I/inventory.yaml" --host "$h" >"$AF_TMP/ansible-$h.json" 2>"$AF_TMP/ansible.err" ||
        af_fail "ansible-inventory --host $h: $(cat "$AF_TMP/ansible.err")"
    # Ansible's view, in archfarm's terms (an unset priority is 0, a
    # platforms string is a comma-separated list)
    want=$(jq -cS '{port: (.archfarm_port // 7420), max_jobs: (.archfarm_max_jobs // 1),
        priority: (.archfarm_priority // 0), insecure: (.archfarm_insecure // false),
        labels: (.archfarm_labels // {}),
        platforms: (.archfarm_platforms | if type == "string" then split(",") else . end)}' \
        "$AF_TMP/ansible-$h.json")
    got=$(jq -cS --arg h "$h" '.[] | select(.name == $h) | {port: (.endpoint | split(":")[-1] | tonumber),
        max_jobs, priority, insecure, labels, platforms}' "$AF_TMP/archfarm.json")
    af_assert_eq "$want" "$got" "$h: archfarm resolves what ansible-inventory resolves"
done
# the values really came from every level (the comparison alone would pass
# if both ignored the directories)
af_assert_eq '7600 8 7 false' "$(jq -r '.[] | select(.name == "pi02") |
    "\(.endpoint | split(":")[-1]) \(.max_jobs) \(.priority) \(.insecure)"' "$AF_TMP/archfarm.json")" \
    "pi02: port from group_vars/arm/, max_jobs and insecure from host_vars/pi02/"
af_assert_eq '7700 4 {"tier":"override"}' "$(jq -c -r '.[] | select(.name == "box") |
    "\(.endpoint | split(":")[-1]) \(.max_jobs) \(.labels | tojson)"' "$AF_TMP/archfarm.json")" \
    "box: port from host_vars/box.yaml, max_jobs and labels from group_vars/archfarm_agents/"

# --- refused: YAML 1.1 / 1.2 differences and typos, at FILE:LINE:COL ----------------
s_refused() { # FILE CONTENT EXPECTED-MESSAGE
    printf '%s\n' "$2" >"$1"
    local rc=0
    af_archfarm_inv "$I/inventory.yaml" >/dev/null 2>"$AF_TMP/refused.err" || rc=$?
    af_assert_eq 2 "$rc" "$(basename "$1"): '$2' is refused"
    af_assert_contains "$(cat "$AF_TMP/refused.err")" "$3" "and the error names the file, line and column"
    rm -f "$1"
}
s_refused "$I/host_vars/pi01.yml" 'archfarm_port: 07420' \
    "$I/host_vars/pi01.yml:1:16: archfarm_port: \"07420\" is read differently by YAML 1.1"
s_refused "$I/host_vars/pi01.yml" 'archfarm_max_jobs: 1_0' "$I/host_vars/pi01.yml:1:20: archfarm_max_jobs"
s_refused "$I/host_vars/pi01.yml" 'archfarm_labels: {gpu: on}' "$I/host_vars/pi01.yml:1:24:"
s_refused "$I/group_vars/arm/zz.yml" 'archfarm_platfroms: [linux/arm64]' \
    "$I/group_vars/arm/zz.yml:1:1: unknown variable archfarm_platfroms (did you mean archfarm_platforms?)"
s_refused "$I/host_vars/pi01.yml" '- a list' "$I/host_vars/pi01.yml:1:1: expected a mapping of variables"

# --- a pipe has no directory: only the inventory's own values --------------------
"$AF_BIN/archfarm" -i <(cat "$I/inventory.yaml") inventory list --format json >"$AF_TMP/pipe.json"
af_assert_eq 7001 "$(jq -r '.[] | select(.name == "box") | .endpoint | split(":")[-1]' "$AF_TMP/pipe.json")" \
    "an inventory read from a pipe reads no group_vars/host_vars"
echo "PASS: test_inventory_vars_dirs"
