#!/usr/bin/env bash
# demo.sh -- THE demo command (README): on a fresh Debian 12 machine, as root,
# from a clone:
#
#   sudo tests/demo.sh
#
# It installs what is missing, builds archfarm, starts a throw-away local
# farm (a docker-registry and three agents, one per platform), builds the
# seed's Go program `sianrelease` for linux/amd64, linux/arm64 and
# linux/arm/v7 with one `archfarm build --push`, prints the published index,
# then pulls each platform's image back and runs its binary: natively for
# amd64 and under qemu-user for arm64 and arm/v7, so each architecture
# answers for itself. Everything it starts is stopped when it ends.
#
# All three agents run on this (amd64) machine; the arm64 and arm/v7 ones
# cross-compile (Go's GOARCH). On a real farm each runs on a host of its own
# architecture. Options: --no-deps (or AF_SKIP_DEPS=1), --keep (keep the
# temp dir with logs and the registry's storage).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

for a in "$@"; do
    case $a in
    --no-deps) export AF_SKIP_DEPS=1 ;;
    --keep) export AF_KEEP_TMP=1 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $a (see --help)" >&2; exit 2 ;;
    esac
done

step=0
header() {
    step=$((step + 1))
    printf '\n\033[1m=== %d. %s\033[0m\n' "$step" "$*"
}

header "Install missing Debian packages"
# shellcheck source=lib/deps.sh
source tests/lib/deps.sh
af_deps_install

header "Build archfarm (cmake -S . -B build && cmake --build build)"
# (warnings are not errors here: the demo must not depend on the compiler version;
# tests/run-all.sh builds with -DAF_WERROR=ON)
cmake -S . -B build -DAF_WERROR=OFF -DAF_SANITIZE=OFF >/dev/null
cmake --build build -j 2
export AF_BIN=$ROOT/build/bin AF_SOURCE_DIR=$ROOT AF_TIMEOUT=${AF_TIMEOUT:-900}
ls -l build/bin/archfarm build/bin/archfarm-agent

# shellcheck source=lib/farm.sh
source tests/lib/farm.sh
af_farm_init
# The agents' build steps (and Go's build cache) use the demo's temp dir, so
# nothing stays behind when the demo ends.
mkdir -p "$AF_TMP/tmp"
export TMPDIR=$AF_TMP/tmp

header "Start a local registry (docker-registry on a free loopback port)"
af_farm_registry_start
echo "registry: http://$AF_REGISTRY/v2/"

header "Start three agents, one per platform (plaintext transport: --insecure)"
af_agent_start amd64-node linux/amd64
af_agent_start arm64-node linux/arm64
af_agent_start armv7-node linux/arm/v7
af_inventory_write "$AF_TMP/inventory.yaml"
echo "The inventory (an Ansible inventory; the same file deploys a real farm):"
sed 's/^/    /' "$AF_INVENTORY"
echo
echo "\$ archfarm -i inventory.yaml ls"
af_archfarm ls || true

CTX=$ROOT/tests/integration/fixtures/sianrelease
REF=$AF_REGISTRY/sianrelease:demo
header "Build sianrelease for three platforms and push one multi-platform image"
echo "The recipe ($CTX/archfarm.yaml):"
sed 's/^/    /' "$CTX/archfarm.yaml"
echo
echo "\$ archfarm -i inventory.yaml build --platform linux/amd64,linux/arm64,linux/arm/v7 \\"
echo "      -t $REF --push --progress plain $CTX"
af_archfarm build --platform linux/amd64,linux/arm64,linux/arm/v7 -t "$REF" --push \
    --progress plain --insecure-registry "$AF_REGISTRY" --metadata-file "$AF_TMP/metadata.json" "$CTX" ||
    af_fail "archfarm build failed (exit $?)"
echo
echo "metadata file:"
jq . "$AF_TMP/metadata.json" | sed 's/^/    /'

header "The published image index"
IT=(imagetools inspect)
if "$AF_BIN/archfarm" imagetools inspect --help 2>&1 | grep -q -- --insecure-registry; then
    IT+=(--insecure-registry "$AF_REGISTRY")
fi
echo "\$ archfarm imagetools inspect $REF"
"$AF_BIN/archfarm" "${IT[@]}" "$REF" || af_fail "archfarm imagetools inspect failed"
echo
echo "\$ skopeo inspect --raw docker://$REF   (a client we did not write)"
af_skopeo inspect --raw --tls-verify=false "docker://$REF" | jq . | tee "$AF_TMP/index.json"
n=$(jq '.manifests | length' "$AF_TMP/index.json")
platforms=$(jq -r '.manifests[].platform | [.os, .architecture, .variant // empty] | join("/")' \
    "$AF_TMP/index.json" | sort | paste -sd' ' -)
[[ $n == 3 && $platforms == "linux/amd64 linux/arm/v7 linux/arm64" ]] ||
    af_fail "expected an index with exactly linux/amd64, linux/arm64, linux/arm/v7; got $n: $platforms"
echo "=> one index, exactly 3 platforms: $platforms"

header "Pull each platform's image and run it"
for plat in linux/amd64 linux/arm64 linux/arm/v7; do
    d="$AF_TMP/pull-${plat//\//-}"
    af_pull_rootfs "$REF" "$plat" "$d"
    q=$(af_qemu_for "$plat")
    IFS=/ read -r os arch variant <<<"$plat"
    pull="skopeo --override-arch $arch${variant:+ --override-variant $variant} copy docker://$REF dir:..."
    echo "\$ $pull"
    echo "\$ ${q:+$q }./sianrelease      # the $plat binary from the image"
    said=$($q "$d/rootfs/sianrelease") || af_fail "$plat binary did not run"
    echo "    $said"
    want=$arch
    [[ $said == *" on linux/$want" ]] || af_fail "$plat binary answered '$said'"
done

header "Done: stopping the agents and the registry"
echo "Every slice was built by the agent serving its platform, pushed by digest,"
echo "verified, and published under one tag as an OCI image index."
