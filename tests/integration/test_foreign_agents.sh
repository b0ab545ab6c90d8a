#!/usr/bin/env bash
# test_foreign_agents -- the agent as a real arm64 and armv7 program.
#
# scripts/cross-build makes archfarm-agent for arm64 and armhf against a
# sysroot of Debian's own packages. Here those binaries run under qemu-user
# (qemu-aarch64-static / qemu-arm-static -L SYSROOT) with NO --platform flag,
# beside the native amd64 agent:
#   - each detects its platform itself (uname under qemu-user reports the
#     emulated machine: aarch64 -> linux/arm64, armv7l -> linux/arm/v7) and
#     `archfarm ls` shows it;
#   - a three-platform build through them publishes an index whose arm64 and
#     arm/v7 images run (under qemu) and print their machine;
#   - after a one-line change to the (2 MiB) context, each foreign agent is
#     sent a delta and rebuilds the context from it (docs/protocol.md,
#     Context deltas), and the rebuilt images run.
# What stands in for hardware: qemu-user runs the agents, and the build step
# the emulated agent spawns (/bin/sh, then the cross compiler) is the host's,
# since this machine has no arm userland; the step follows $TARGETARCH, as
# a native arm host's own compiler would build for itself.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
for a in arm64 armhf; do
    af_cross_ensure "$a"
    bin=$AF_SOURCE_DIR/build-cross/$a/bin/archfarm-agent
    file -L "$bin" | grep -q "ARM" || af_fail "$bin is not an ARM program: $(file -L "$bin")"
done

af_farm_registry_start
af_agent_start node-amd64 linux/amd64
# s_foreign_agent NAME ARCH QEMU INVENTORY-PLATFORM: the cross-built agent
# of ARCH under QEMU, with no --platform flag
s_foreign_agent() {
    AF_AGENT_NO_PLATFORM=1
    AF_AGENT_BIN=$AF_SOURCE_DIR/build-cross/$2/bin/archfarm-agent
    AF_AGENT_WRAP=("$3" -L "$AF_SOURCE_DIR/build-cross/$2/sysroot")
    af_agent_start "$1" "$4"
    unset AF_AGENT_NO_PLATFORM AF_AGENT_BIN AF_AGENT_WRAP
}
s_foreign_agent node-aarch64 arm64 qemu-aarch64-static linux/arm64
s_foreign_agent node-armv7 armhf qemu-arm-static linux/arm/v7
af_inventory_write "$AF_TMP/inventory.yaml"

# the processes really are the foreign binaries under qemu
for n in node-aarch64:qemu-aarch64 node-armv7:qemu-arm; do
    pid=${AF_AGENT_PID[${n%%:*}]}
    af_assert_contains "$(tr '\0' ' ' </proc/"$pid"/cmdline)" "${n#*:}-static" "${n%%:*} runs under qemu-user"
done

# --- each detected its own platform ------------------------------------------
af_assert_contains "$(cat "${AF_AGENT_DIR[node-aarch64]}/stderr.log")" "linux/arm64" \
    "the aarch64 agent logs the platform it detected"
rc=0
af_archfarm ls >"$AF_TMP/ls.out" 2>&1 || rc=$?
cat "$AF_TMP/ls.out" >&2
af_assert_eq 0 "$rc" "archfarm ls exit status"
af_assert_match "$(cat "$AF_TMP/ls.out")" 'node-aarch64.*linux/arm64' "ls: the aarch64 agent serves linux/arm64"
af_assert_match "$(cat "$AF_TMP/ls.out")" 'node-armv7.*linux/arm/v7' "ls: the armv7 agent serves linux/arm/v7"
if grep -E 'node-armv7.*linux/arm64' "$AF_TMP/ls.out"; then
    af_fail "the armv7 agent must not claim linux/arm64"
fi

# --- a three-platform build through them ---------------------------------------
cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/cross-c" "$AF_TMP/ctx"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$AF_TMP/ctx/padding.bin" # over AF_CTXDELTA_MIN_BYTES
REF="$AF_REGISTRY/foreign:1.0"
rc=0
af_build "$AF_TMP/build.out" --platform linux/amd64,linux/arm64,linux/arm/v7 \
    -t "$REF" --push --metadata-file "$AF_TMP/m.json" "$AF_TMP/ctx" || rc=$?
cat "$AF_TMP/build.out" >&2
af_assert_eq 0 "$rc" "archfarm build exit status"
af_assert_eq node-aarch64 "$(jq -r '.slices[] | select(.platform == "linux/arm64") | .node' "$AF_TMP/m.json")" \
    "linux/arm64 was built by the aarch64 agent"
af_assert_eq node-armv7 "$(jq -r '.slices[] | select(.platform == "linux/arm/v7") | .node' "$AF_TMP/m.json")" \
    "linux/arm/v7 was built by the armv7 agent"

af_skopeo inspect --raw --tls-verify=false "docker://$REF" >"$AF_TMP/index.json" ||
    af_fail "skopeo inspect --raw docker://$REF failed"
got=$(jq -r '.manifests[].platform | [.os, .architecture, .variant // empty] | join("/")' \
    "$AF_TMP/index.json" | sort | paste -sd, -)
af_assert_eq "linux/amd64,linux/arm/v7,linux/arm64" "$got" "index platforms"
af_oci_validate index "$AF_TMP/index.json"

declare -A want=([linux/amd64]=x86_64 [linux/arm64]=aarch64 [linux/arm/v7]=armv7l)
for plat in linux/amd64 linux/arm64 linux/arm/v7; do
    d="$AF_TMP/pull-${plat//\//-}"
    af_pull_rootfs "$REF" "$plat" "$d"
    q=$(af_qemu_for "$plat")
    out=$($q "$d/rootfs/hello") || af_fail "$plat image's /hello did not run"
    af_assert_eq "hello from ${want[$plat]}" "$out" "$plat image runs and reports its machine"
done

# --- a one-line change: the foreign agents apply a delta -------------------------
echo "/* changed after the first build */" >>"$AF_TMP/ctx/hello.c"
rc=0
af_build "$AF_TMP/build2.out" --platform linux/amd64,linux/arm64,linux/arm/v7 \
    -t "$REF" --push --metadata-file "$AF_TMP/m2.json" "$AF_TMP/ctx" || rc=$?
cat "$AF_TMP/build2.out" >&2
af_assert_eq 0 "$rc" "archfarm build after a one-line change exit status"
for n in node-aarch64:linux/arm64 node-armv7:linux/arm/v7; do
    sent=$(jq -r --arg p "${n#*:}" '.slices[] | select(.platform == $p) | .context_bytes_sent' "$AF_TMP/m2.json")
    ((sent > 0 && sent < 65536)) || af_fail "${n#*:}: $sent context bytes sent for a one-line change"
    af_assert_contains "$(cat "${AF_AGENT_DIR[${n%%:*}]}/stderr.log")" "rebuilt from a delta" \
        "${n%%:*} (under qemu) rebuilt the context from a delta"
done
for plat in linux/arm64 linux/arm/v7; do
    d="$AF_TMP/pull2-${plat//\//-}"
    af_pull_rootfs "$REF" "$plat" "$d"
    out=$($(af_qemu_for "$plat") "$d/rootfs/hello") || af_fail "rebuilt $plat image's /hello did not run"
    af_assert_eq "hello from ${want[$plat]}" "$out" "rebuilt $plat image runs"
done

af_agents_stop || af_fail "an agent did not stop cleanly"
echo "PASS: test_foreign_agents"
