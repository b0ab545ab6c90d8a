#!/usr/bin/env bash
# test_ansible_package -- the role installs the agent built for the host.
#
#   - archfarm_install_method: package (the default) on a host that reports
#     ansible_architecture aarch64 (an extra var stands in for an arm64
#     host; this machine is amd64) picks archfarm-agent_*_arm64.deb out of
#     a controller directory holding amd64, arm64 and armhf packages, checks
#     its control fields, and unpacks it into the host's prefix: the agent
#     there is an aarch64 program. A second run changes nothing.
#   - the same for armv7l -> armhf (a 32-bit ARM program).
#   - a plain binary whose ELF machine is not the host's (the arm64 agent on
#     this x86_64 host, real facts) is refused before the role changes
#     anything: the play fails naming both, and the prefix stays empty.
#   - two versions in the directory without archfarm_version is refused
#     naming both; archfarm_version picks one (the rollback switch).
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
command -v ansible-playbook >/dev/null || af_fail "ansible-playbook not installed"
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCAL_TEMP="$AF_TMP/ansible-local" \
    ANSIBLE_REMOTE_TEMP="$AF_TMP/ansible-remote" ANSIBLE_STDOUT_CALLBACK=default
PLAY="$AF_SOURCE_DIR/deploy/ansible/site.yml"

# --- the packages: this machine's own, and the cross-built ones ----------------
for a in arm64 armhf; do
    af_cross_ensure "$a"
done
PKGS="$AF_TMP/dist"
mkdir -p "$PKGS"
(cd "$AF_BIN/.." && cpack -G DEB -B "$AF_TMP/cpack" >"$AF_TMP/cpack.log" 2>&1) ||
    af_fail "cpack failed: $(tail -n 30 "$AF_TMP/cpack.log")"
cp "$AF_TMP"/cpack/archfarm-agent_*_amd64.deb "$AF_SOURCE_DIR"/build-cross/arm64/archfarm-agent_*_arm64.deb \
    "$AF_SOURCE_DIR"/build-cross/armhf/archfarm-agent_*_armhf.deb "$PKGS/"
ls -l "$PKGS" >&2
VERSION=$(dpkg-deb -f "$PKGS"/archfarm-agent_*_arm64.deb Version)

# s_play NAME ARCH-OVERRIDE EXTRA-VARS...: runs site.yml for one local host
# into $AF_TMP/NAME (no user, no packages, no service), output in NAME.log
s_play() {
    local name=$1 arch=$2
    shift 2
    local root="$AF_TMP/$name"
    mkdir -p "$root"
    cat >"$AF_TMP/$name.inv.yaml" <<EOF
all:
  children:
    archfarm_agents:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: /usr/bin/python3
          archfarm_platforms: [linux/arm64]
          archfarm_insecure: true
          archfarm_root: "$root"
          archfarm_packages_dir: "$PKGS"
          archfarm_become: false
          archfarm_create_user: false
          archfarm_user: root
          archfarm_group: root
          archfarm_install_packages: false
          archfarm_manage_service: false
EOF
    local extra=() qemu="" debarch=""
    case $arch in
    aarch64) qemu=qemu-aarch64-static debarch=arm64 ;;
    armv7l) qemu=qemu-arm-static debarch=armhf ;;
    esac
    [[ -n $arch ]] && extra=(-e "ansible_architecture=$arch")
    # the role checks agent.yaml with the installed agent (--check-config);
    # on this amd64 stand-in for an arm host that binary runs under
    # qemu-user with its sysroot, as it would natively on the board
    [[ -n $qemu ]] && extra+=(-e "{\"archfarm_agent_exe\": \"$qemu -L $AF_SOURCE_DIR/build-cross/$debarch/sysroot $root/usr/bin/archfarm-agent\"}")
    ansible-playbook -i "$AF_TMP/$name.inv.yaml" "$PLAY" "${extra[@]}" "$@" >"$AF_TMP/$name.log" 2>&1
}

# --- an arm64 host gets the arm64 package; an armv7l host the armhf one ---------
for case in aarch64:arm64:'ARM aarch64' armv7l:armhf:'ARM, EABI5'; do
    IFS=: read -r uname_m debarch elf <<<"$case"
    s_play "host-$debarch" "$uname_m" || af_fail "the role failed for a $uname_m host: $(tail -n 40 "$AF_TMP/host-$debarch.log")"
    bin="$AF_TMP/host-$debarch/usr/bin/archfarm-agent"
    [[ -x $bin ]] || af_fail "$uname_m host: no /usr/bin/archfarm-agent in the prefix"
    af_assert_contains "$(file -L "$bin")" "$elf" "$uname_m host got the $debarch agent"
    af_assert_eq "$VERSION" "$(cat "$AF_TMP/host-$debarch/var/lib/archfarm/installed-version")" \
        "$uname_m host: the installed version is recorded"
    [[ -f $AF_TMP/host-$debarch/var/cache/archfarm/packages/archfarm-agent_${VERSION}_$debarch.deb ]] ||
        af_fail "$uname_m host: the package is not kept in /var/cache/archfarm/packages"
    af_assert_contains "$(cat "$AF_TMP/host-$debarch/etc/systemd/system/archfarm-agent.service")" \
        "ExecStart=/usr/bin/archfarm-agent" "$uname_m host: the unit runs the packaged binary"
    s_play "host-$debarch" "$uname_m" || af_fail "second run failed: $(tail -n 40 "$AF_TMP/host-$debarch.log")"
    af_assert_match "$(cat "$AF_TMP/host-$debarch.log")" 'localhost *: ok=[0-9]+ +changed=0 ' \
        "$uname_m host: a second run changes nothing"
done

# --- a mismatched binary is refused before anything changes -----------------------
rc=0
s_play wrong-binary "" -e archfarm_install_method=binary \
    -e "archfarm_agent_binary=$AF_SOURCE_DIR/build-cross/arm64/bin/archfarm-agent" || rc=$?
af_assert_ne 0 "$rc" "the role fails for an arm64 binary on this x86_64 host"
log=$(cat "$AF_TMP/wrong-binary.log")
af_assert_contains "$log" "machine 183 (aarch64)" "the failure names the binary's machine"
af_assert_contains "$log" "is x86_64: refusing to install it" "the failure names the host's"
left=$(find "$AF_TMP/wrong-binary" -mindepth 1 | head -5)
af_assert_eq "" "$left" "nothing was written to the host's prefix"

# --- two versions: refused unless archfarm_version picks one (rollback) -------------
fake="$AF_TMP/fake"
rm -rf "$fake"
mkdir -p "$fake"
dpkg-deb -R "$PKGS"/archfarm-agent_*_arm64.deb "$fake"
sed -i "s/^Version: .*/Version: 0.0.9/" "$fake/DEBIAN/control"
dpkg-deb -b "$fake" "$PKGS/archfarm-agent_0.0.9_arm64.deb" >/dev/null
rc=0
s_play two-versions aarch64 || rc=$?
af_assert_ne 0 "$rc" "two arm64 packages and no archfarm_version: refused"
af_assert_contains "$(cat "$AF_TMP/two-versions.log")" "archfarm-agent_0.0.9_arm64.deb" \
    "the refusal lists the candidates"
s_play host-arm64 aarch64 -e archfarm_version=0.0.9 ||
    af_fail "archfarm_version=0.0.9 (rollback) failed: $(tail -n 40 "$AF_TMP/host-arm64.log")"
af_assert_eq 0.0.9 "$(cat "$AF_TMP/host-arm64/var/lib/archfarm/installed-version")" \
    "archfarm_version rolls the host back"
ls "$AF_TMP/host-arm64/var/cache/archfarm/packages/" | grep -q "archfarm-agent_${VERSION}_arm64.deb" ||
    af_fail "the newer package is still kept for a roll forward"

echo "PASS: test_ansible_package"
